"""Services: the only code that changes the status of runs, steps and tasks.

Each public function runs in one transaction and sends its effects (Celery messages, live
events) only after that transaction commits. Views, API endpoints, Celery tasks and
management commands all call these; none writes a status itself."""
