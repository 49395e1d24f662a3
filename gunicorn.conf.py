"""gunicorn settings for the Procfile's web process (refined by the operations issue)."""
import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
preload_app = True
graceful_timeout = 30
accesslog = None
