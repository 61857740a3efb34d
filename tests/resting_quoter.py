"""A test service that trades: on the first READY it places one small bid far below the market
(so it rests) through ``self.trading``, the way a strategy would. The kill-switch tests
(tests/cli/test_halt_cli.py, tests/browser/test_console_trading.py) use it to have an order of
ours resting at the exchange, placed by a service, when they press halt.

Loadable by ``run --service tests/resting_quoter.py:RestingQuoter`` from the checkout.
"""

from __future__ import annotations

from decimal import Decimal

from actors.service import ServiceActor, ServiceOptions
from messages.metadata import ReadyMetadata


class RestingQuoterOptions(ServiceOptions):
    price: Decimal = Decimal("0.01")
    """A YES bid this low rests: nobody sells YES at a cent on the embedded exchange."""
    count: Decimal = Decimal("3")
    orders: int = 1


class RestingQuoter(ServiceActor):
    options_model = RestingQuoterOptions
    service_name = "resting_quoter"

    def setup(self) -> None:
        self.placed: list[str] = []

    def on_ready(self, metadata: ReadyMetadata) -> None:
        options: RestingQuoterOptions = self.options
        if self.trading is None or self.placed or not self.markets:
            return
        for index in range(options.orders):
            ticker = self.markets[index % len(self.markets)]
            self.placed.append(self.trading.place(ticker, "bid", options.count, options.price))
