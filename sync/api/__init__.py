"""The operator HTTP API and web console served by ``c2m-sync serve``."""
