"""The HTTP layer shared by every API surface: app assembly, the front middleware,
authentication, parsing, operator routes, the runner and the supervisor."""
