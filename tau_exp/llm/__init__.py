"""Calling models: every model call (`chat.ChatModel`: litellm, retries, the episode's headers),
the job's in-flight limit per server that each call holds a slot of (`concurrency`), the
episode headers (`tags`) and the thinking taken out of replies (`reasoning`)."""
