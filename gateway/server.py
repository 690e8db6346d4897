"""``python -m gateway.server``: the gateway (FastAPI + uvicorn) on ``GATEWAY_PORT`` (8000)."""

from gateway.app import main

if __name__ == "__main__":
    main()
