"""The gateway's routes, one ``APIRouter`` per resource; ``app.create_app`` mounts each with its dependencies."""
