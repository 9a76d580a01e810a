"""Back-office archives (B2–B4) and the regulators' review of them. Server-rendered pages; every
POST is a form with the CSRF field. (B5, interconnection set-up, is
:mod:`portal_site.routes.interconnection`.)

Operators only ever reach their own rows (the services scope every query and answer 404 for
other operators' ids); regulators see all. Buttons come from the workflow tables
(``Workflow.allowed``); an illegal move is a 409 whose message names the current state.

One module a responsibility, each with its ``ROUTES`` (listed in ``portal_site.app.ROUTE_MODULES``):

* :mod:`.stations`: B2 station archives (/backoffice/stations);
* :mod:`.reports`: B3 report archives, the type-test reports (/backoffice/reports);
* :mod:`.facilities`: B4 facility archives (/backoffice/facilities);
* :mod:`.import_export`: the Excel templates and guide documents to download, the Excel import;
* :mod:`.review`: the regulators' queues and decisions (/admin/stations, /admin/facilities);
* :mod:`.lists`: the list pages' contexts, shared by the above and B5;
* :mod:`.common`: guards, form bodies, messages, redirects, the page context and
  :func:`~.common.run_or_render`, the one shape of a POST that changes an archive.
"""
