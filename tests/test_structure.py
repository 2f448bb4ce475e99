"""The package's structure, beyond what import-linter's contracts (pyproject.toml) can say."""

from __future__ import annotations

import grimp


def _import_cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[set[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(sorted(graph.find_modules_directly_imported_by(other)))))
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        cycles.append(component)
    return cycles


def test_no_module_of_tau_exp_is_in_an_import_cycle():
    """No cycle at all, a package and its own children included (import-linter's acyclic_siblings
    contract sees only cycles between siblings): every module can be read from those it imports."""
    assert _import_cycles(grimp.build_graph("tau_exp")) == []


def test_the_cycle_check_finds_a_parent_child_cycle(tmp_path, monkeypatch):
    """The check itself: a package whose __init__ imports its child, which imports the package back."""
    package = tmp_path / "cyclic_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from cyclic_pkg import child\n")
    (package / "child.py").write_text("import cyclic_pkg\n")
    (package / "leaf.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _import_cycles(grimp.build_graph("cyclic_pkg")) == [{"cyclic_pkg", "cyclic_pkg.child"}]
