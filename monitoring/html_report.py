"""A report.html that no event field can run script in.

Evidently 0.7 writes a report's data as JSON inside a `<script>` block without escaping
`</`: a `utm_source` of `</script><script>...` ends the block and runs in the page engineers
open to look at drift. This renders the same page with the data embedded as JSON whose `<`,
`>` and `&` are `\\u003c`, `\\u003e`, `\\u0026` escapes: the same values for the JavaScript
that draws the report, nothing the HTML parser can act on. It uses Evidently's private
widget list, so the Evidently version is checked like Feast's (`feature_repo/feast_adapter`).
"""
from __future__ import annotations

import json
import uuid

import evidently

from recsys.core.errors import ConfigError

WRITTEN_FOR = "0.7"
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
            "\u2029": "\\u2029"}


def check_evidently_version(version: str | None = None) -> None:
    version = version or evidently.__version__
    if ".".join(version.split(".")[:2]) != WRITTEN_FOR:
        raise ConfigError(f"evidently {version} is installed; monitoring/html_report.py was "
                          f"written for evidently {WRITTEN_FOR}.x: re-check it")


def script_safe_json(value, encoder) -> str:
    """JSON text that can sit inside a `<script>` element whatever its strings hold."""
    text = json.dumps(value, cls=encoder)
    return "".join(_ESCAPES.get(char, char) for char in text)


def report_html(snapshot) -> str:
    """The standalone HTML page of an Evidently snapshot, with its data script-safe."""
    check_evidently_version()
    from evidently.legacy.model.dashboard import DashboardInfo
    from evidently.legacy.model.widget import AdditionalGraphInfo
    from evidently.legacy.renderers.base_renderer import DetailsInfo
    from evidently.legacy.renderers.html_widgets import group_widget
    from evidently.legacy.utils.dashboard import TemplateParams, file_html_template
    from evidently.legacy.utils.numpy_encoder import NumpyEncoder

    widgets = [group_widget(title="", widgets=snapshot._widgets)] + snapshot._tests_widgets
    graphs = {}
    for widget in widgets:
        for graph in widget.get_additional_graphs():
            info = graph.params if isinstance(graph, AdditionalGraphInfo) else graph
            item = DetailsInfo(title="", info=info, id=graph.id)
            graphs[f"{item.id}"] = item.info.dict() if hasattr(item.info, "dict") else item.info
    dashboard_id = "metric_" + uuid.uuid4().hex
    info = DashboardInfo(name="Report", widgets=widgets).dict()
    for widget in info["widgets"]:
        widget.pop("additionalGraphs", None)
    page = file_html_template(TemplateParams(dashboard_id=dashboard_id, dashboard_info=None,
                                             additional_graphs={}, embed_data=False))
    data = (f"<script>\n    var {dashboard_id} = {script_safe_json(info, NumpyEncoder)};\n"
            f"    var additional_graphs_{dashboard_id} = "
            f"{script_safe_json(graphs, NumpyEncoder)};\n</script>")
    placeholder = "<!-- no embedded data -->"
    if page.count(placeholder) != 1:
        raise ConfigError("evidently's page template changed: cannot embed the report data")
    return page.replace(placeholder, data)
