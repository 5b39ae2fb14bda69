"""The HTTP edge: who is calling (authz), what a request gets (dependencies), and the middleware."""
