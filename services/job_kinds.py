"""Every kind of background job and the function that runs it: the one table `flask worker` reads.

It lives apart from services.jobs because each handler's module imports services.jobs (to start jobs and
report progress); only the worker needs every kind at once."""

from services import bulk, imports
from services.jobs import Handler

HANDLERS: dict[str, Handler] = {
    imports.KIND: imports.run,  # a CSV import: check the rows, then write them once confirmed
    bulk.KIND: bulk.run,  # a bulk action over the accounts of a search or a selection
}
