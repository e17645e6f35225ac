"""The web console served by ``custodiet serve`` at ``/``: the overseer's ledger explorer
(``/ledger``), the custodian desk (``/desk``) and the reviewer workbench (``/workbench``).

Pages are plain HTML; small ES modules (``static/``) read everything through the service's
public API, verify the log in the browser and sign actions with the user's own key, which never
leaves the page. Nothing here reaches the core except through that API.
"""

from custodiet.console.pages import add_console

__all__ = ["add_console"]
