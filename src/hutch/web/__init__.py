"""Server-rendered pages: the pages behind emailed links now, the dashboard later."""
