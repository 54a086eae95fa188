"""TreeOptions: the one place per-actor tunings come from while `services` is retired."""

from __future__ import annotations

from actors import mode_guard, notifier, order_router, resource_probe
from runtime.app.app import TreeOptions


def test_the_old_services_keys_map_onto_tree_options_one_for_one() -> None:
    transport, sampler = object(), object()
    router, guard = order_router.Tuning(request_timeout=1.0), mode_guard.Tuning()
    config = notifier.NotifierConfig()
    opts = TreeOptions.from_services({
        "transport": transport, order_router.TUNING_SERVICE: router,
        mode_guard.TUNING_SERVICE: guard, notifier.CONFIG_SERVICE: config,
        resource_probe.SAMPLER_SERVICE: sampler})
    assert opts.transport is transport and opts.probe_sampler is sampler
    assert opts.router_tuning is router and opts.guard_tuning is guard
    assert opts.notifier_config is config
    assert opts.probe_config is None and opts.selector_tuning is None
    assert TreeOptions.from_services({}) == TreeOptions()
