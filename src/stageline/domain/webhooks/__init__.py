"""Incoming webhooks of GitLab, GitHub, Gitea/Forgejo and CodeArts Repo: which host sent a
delivery, whether its secret checks out, and what it asks for (a run's build params, or why it
starts nothing). Pure: the caller passes the headers and the raw body bytes.
"""
