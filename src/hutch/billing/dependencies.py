"""The billing domain's services for routes and pages (jobs use ``X.of(ctx.uow, ctx.resources)``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.billing.service import BillingService
from hutch.billing.subscriptions import Subscriptions
from hutch.http.dependencies import ResourcesDep, UoWDep

# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.


async def billing_service(uow: UoWDep, resources: ResourcesDep) -> BillingService:
    return BillingService.of(uow, resources)


BillingServiceDep = Annotated[BillingService, Depends(billing_service)]


async def subscriptions(uow: UoWDep, resources: ResourcesDep) -> Subscriptions:
    return Subscriptions.of(uow, resources)


SubscriptionsDep = Annotated[Subscriptions, Depends(subscriptions)]
