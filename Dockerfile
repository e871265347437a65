# One image for web, workers and beat (compose picks the command). CPU torch by default;
# GPU hosts build with --build-arg TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>".
FROM python:3.11-slim
ARG TORCH_SPEC="torch==2.13.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir $TORCH_SPEC && pip install --no-cache-dir -r requirements.txt
COPY . .
RUN CLINPREF_ALLOW_WEAK_SECRET=1 python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
