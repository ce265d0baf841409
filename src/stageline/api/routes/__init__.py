"""One APIRouter per resource; handlers are thin: validate, call engine or store, render."""
