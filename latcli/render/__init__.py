"""Renderers: return text or rich renderables, never print. Only this package imports rich."""
