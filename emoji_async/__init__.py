"""emoji_async: an asyncio-native client for the DashScope Emoji service."""

__version__ = "0.1.0"
