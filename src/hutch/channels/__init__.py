"""Where end users reach agents: Telegram, WhatsApp, the web widget, voice and the OpenAI-compatible API."""
