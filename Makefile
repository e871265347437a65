.PHONY: run test bench-hot-path bench-import
# Install everything and serve the app with demo data (SQLite, CPU, a Celery worker on an embedded broker).
run:
	scripts/run.sh
# Install everything and run the whole test suite on the local PostgreSQL and Redis.
test:
	scripts/test.sh
bench-hot-path:
	.venv/bin/python bench/hot_path.py
bench-import:
	.venv/bin/python bench/import.py
