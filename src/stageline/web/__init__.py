"""The web dashboard: server-rendered Jinja2 pages, a little plain JavaScript served from here
(EventSource for live updates, fetch for actions), and no build step.

Sits above `api`: it reuses the API's services, renderers and role checks, and carries out
actions through the same engine commands. Nothing below imports it; `cli` composes it.
"""
