"""What the API answers: one TypedDict per body, field for field in the order the server emits.

Each is both the return type of the code that builds the body (so mypy checks every key and
value) and the route's response model (so /openapi.json shows it). Bodies that are stored JSON
passed through as given (schedules, triggers, a run's sources) are typed as plain objects.
"""
