"""The stores: the only modules on the request path that query the database. Views call their
functions (named for what they do) and get back what they answer with."""
