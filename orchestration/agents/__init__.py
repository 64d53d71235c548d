"""The support-desk agents. Each is a function from an AgentContext to an AgentResult; the
step service runs it, records what it returns and decides what runs next."""
