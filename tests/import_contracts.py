"""An import-linter contract type for the project's layers (``[tool.importlinter]`` in
pyproject.toml; ``make test`` runs ``lint-imports``).

import-linter's own ``layers`` contract treats a layer as a package with all its descendants,
so it cannot say "``accounts`` without ``accounts.api``": here the API and dashboard sit at the
top while the rest of ``accounts`` sits near the bottom. This contract places each module in
the layer of the longest module prefix that names it (``accounts.api.views`` is in the layer
that lists ``accounts.api``, ``accounts.plans`` in the one that lists ``accounts``) and refuses
every direct import of a module in a higher layer. Direct imports are enough: when each step of
a chain goes down or sideways, so does the chain. Modules that no prefix names (the standard
library, most third-party packages) are not checked; a third-party package that is listed
(``rest_framework``) belongs to its layer like a project module.

``layers`` is listed top first, like import-linter's; each entry is ``name: prefix prefix ...``.
"""

from __future__ import annotations

from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils


class OneWayLayersContract(Contract):
    type_name = "one_way_layers"

    layers = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR)

    def check(self, graph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph, ignore_imports=self.ignore_imports,
            unmatched_alerting=self.unmatched_ignore_imports_alerting)
        names, levels = self._parse_layers()
        missing = sorted(prefix for prefix in levels if prefix not in graph.modules)
        if missing:
            raise ValueError(f"{self.name}: no such module: {', '.join(missing)}")
        violations = []
        for importer in sorted(graph.modules):
            low = _level_of(importer, levels)
            if low is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                high = _level_of(imported, levels)
                if high is None or high >= low:
                    continue
                lines = sorted((d["line_number"], d["line_contents"]) for d in
                               graph.get_import_details(importer=importer, imported=imported))
                violations.append({"importer": importer, "imported": imported,
                                   "from": names[low], "to": names[high], "lines": lines})
        return ContractCheck(kept=not violations, warnings=list(removal.warnings),
                             ignored_import_count=removal.ignored_import_count,
                             metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for found in check.metadata["violations"]:
            output.print_error(f"{found['importer']} ({found['from']}) imports "
                               f"{found['imported']} ({found['to']}), a higher layer:")
            output.new_line()
            for number, contents in found["lines"]:
                output.indent_cursor()
                output.print_error(f"{found['importer']}:{number}: {contents}", bold=False)
            output.new_line()

    def _parse_layers(self) -> tuple[list[str], dict[str, int]]:
        """Layer names top first, and each prefix's level (0 = top)."""
        names, levels = [], {}
        for level, entry in enumerate(self.layers):
            name, sep, prefixes = str(entry).partition(":")
            if not sep or not prefixes.split():
                raise ValueError(f"{self.name}: a layer is 'name: prefix ...', not {entry!r}")
            names.append(name.strip())
            for prefix in prefixes.split():
                if prefix in levels:
                    raise ValueError(f"{self.name}: {prefix} is in two layers")
                levels[prefix] = level
        return names, levels


def _level_of(module: str, levels: dict[str, int]) -> int | None:
    """The level of the longest prefix naming ``module`` (itself or a parent package)."""
    while module:
        if module in levels:
            return levels[module]
        module = module.rpartition(".")[0]
    return None
