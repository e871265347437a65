"""The K-QA demo data (kqa_demo.jsonl, see README.md) and its loader (load.py, run by
manage.py load_demo). May import any annotation package; nothing imports it but the command."""
