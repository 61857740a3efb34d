"""Serving over HTTP and WebSocket: one stack (Starlette on uvicorn) for every server we run.

A bottom layer: it imports nothing of ours, so both the embedded exchange and the
application's console server can use it.
"""
