"""Queries of the webhook tables.

:class:`WebhookRepository` is bound to one workspace, like every repository in
``shardvault.store.repositories``. :class:`DeliveryQueue` is the dispatcher's deliberate
cross-tenant view: one dispatcher serves every workspace, so it claims due deliveries
wherever they are (and nothing else: it reads the event and endpoint of what it claimed).

Repositories never commit; the caller's unit of work does.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from shardvault.store.models_webhooks import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookResourceSequence,
)
from shardvault.store.repositories import (
    deferred_writes,
    insert_ignoring_conflict,
    insert_many_ignoring_conflict,
    transaction_scoped,
)

TimeCursor = tuple[datetime, str]
"""A position in a time-ordered list: (timestamp, id) of the last row already seen."""


def _after(
    created: InstrumentedAttribute[datetime], ident: InstrumentedAttribute[str], cursor: TimeCursor
) -> ColumnElement[bool]:
    at, last_id = cursor
    return or_(created > at, and_(created == at, ident > last_id))


class WebhookRepository:
    """Endpoints, events, deliveries and attempts of one workspace."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    # Endpoints.

    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        endpoint.workspace_id = self.workspace_id
        self._forget_endpoints()
        self._session.add(endpoint)
        self._session.flush()
        return endpoint

    def get_endpoint(self, endpoint_id: str, *, for_update: bool = False) -> WebhookEndpoint | None:
        """A live (not deleted) endpoint of this workspace."""
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.workspace_id == self.workspace_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
        if for_update:
            # Locked to be changed: the transaction's list of enabled ones is forgotten.
            self._forget_endpoints()
            query = query.with_for_update().execution_options(populate_existing=True)
        return self._session.scalar(query)

    def list_endpoints(
        self, *, limit: int, cursor: TimeCursor | None = None
    ) -> Sequence[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.workspace_id == self.workspace_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
        if cursor is not None:
            query = query.where(_after(WebhookEndpoint.created_at, WebhookEndpoint.id, cursor))
        order = (WebhookEndpoint.created_at, WebhookEndpoint.id)
        return self._session.scalars(query.order_by(*order).limit(limit)).all()

    def enabled_endpoints(self) -> Sequence[WebhookEndpoint]:
        """The enabled endpoints, read once per transaction (each state change of a
        transaction emits an event; several can share one database transaction).
        Changing an endpoint through this repository forgets the list."""
        known = transaction_scoped(self._session, "webhook_endpoints")
        endpoints = known.get(self.workspace_id)
        if endpoints is None:
            endpoints = known[self.workspace_id] = self._read_enabled_endpoints()
        return endpoints

    def _forget_endpoints(self) -> None:
        transaction_scoped(self._session, "webhook_endpoints").pop(self.workspace_id, None)
        transaction_scoped(self._session, "webhook_endpoints_changed")[self.workspace_id] = True

    def _read_enabled_endpoints(self) -> Sequence[WebhookEndpoint]:
        query = (
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.workspace_id == self.workspace_id,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
            )
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        if transaction_scoped(self._session, "webhook_endpoints_changed").get(self.workspace_id):
            return self._session.scalars(query).all()  # the change is written first
        # Endpoints change only through this repository (which notes it above), so the
        # transaction's pending rows need not be written before this read.
        with deferred_writes(self._session):
            return self._session.scalars(query).all()

    # Events.

    def next_sequence(self, resource_type: str, resource_id: str) -> int:
        """Take the next sequence number of a resource, holding its counter row locked until
        the transaction ends (so numbers commit in order and without gaps); the locked row
        serves the transaction's later events of the same resource without a query."""
        counters = transaction_scoped(self._session, "webhook_sequences")
        key = (self.workspace_id, resource_type, resource_id)
        counter = counters.get(key)
        if counter is None:
            counter = counters[key] = self._lock_sequence(resource_type, resource_id)
        counter.last_seq += 1
        return int(counter.last_seq)

    def new_resource(self, resource_type: str, resource_id: str) -> None:
        """The counter of a resource this transaction creates (with a fresh id, so no
        row can exist): made for :meth:`next_sequence`, not inserted and read back."""
        counters = transaction_scoped(self._session, "webhook_sequences")
        key = (self.workspace_id, resource_type, resource_id)
        if key not in counters:
            counter = WebhookResourceSequence(
                workspace_id=self.workspace_id,
                resource_type=resource_type,
                resource_id=resource_id,
                last_seq=0,
            )
            self._session.add(counter)
            counters[key] = counter

    def lock_sequences(self, resource_type: str, resource_ids: Sequence[str]) -> None:
        """Lock the counters of several resources at once (two queries, not two per
        resource: a batch of transactions), for :meth:`next_sequence` to use."""
        counters = transaction_scoped(self._session, "webhook_sequences")
        wanted = [
            r for r in dict.fromkeys(resource_ids)
            if (self.workspace_id, resource_type, r) not in counters
        ]  # fmt: skip
        if not wanted:
            return
        insert_many_ignoring_conflict(
            self._session,
            WebhookResourceSequence,
            [
                {
                    "workspace_id": self.workspace_id,
                    "resource_type": resource_type,
                    "resource_id": r,
                    "last_seq": 0,
                }
                for r in wanted
            ],
        )
        rows = self._session.scalars(
            select(WebhookResourceSequence)
            .where(
                WebhookResourceSequence.workspace_id == self.workspace_id,
                WebhookResourceSequence.resource_type == resource_type,
                WebhookResourceSequence.resource_id.in_(wanted),
            )
            .order_by(WebhookResourceSequence.resource_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for row in rows:
            counters[(self.workspace_id, resource_type, row.resource_id)] = row

    def _lock_sequence(self, resource_type: str, resource_id: str) -> WebhookResourceSequence:
        # Without an autoflush: counters change only through this repository's locked
        # rows, so nothing pending matters to the read (the commit writes it all).
        with deferred_writes(self._session):
            return self._read_and_lock_sequence(resource_type, resource_id)

    def _read_and_lock_sequence(
        self, resource_type: str, resource_id: str
    ) -> WebhookResourceSequence:
        insert_ignoring_conflict(
            self._session,
            WebhookResourceSequence,
            {
                "workspace_id": self.workspace_id,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "last_seq": 0,
            },
        )
        counter = self._session.scalar(
            select(WebhookResourceSequence)
            .where(
                WebhookResourceSequence.workspace_id == self.workspace_id,
                WebhookResourceSequence.resource_type == resource_type,
                WebhookResourceSequence.resource_id == resource_id,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert counter is not None
        return counter

    def add_event(self, event: WebhookEvent) -> WebhookEvent:
        event.workspace_id = self.workspace_id
        self._session.add(event)  # written with the transaction's next flush
        return event

    def get_event(self, event_id: str, *, for_update: bool = False) -> WebhookEvent | None:
        query = select(WebhookEvent).where(
            WebhookEvent.workspace_id == self.workspace_id, WebhookEvent.id == event_id
        )
        if for_update:
            query = query.with_for_update()
        return self._session.scalar(query)

    def list_events(
        self,
        *,
        limit: int,
        cursor: TimeCursor | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> Sequence[WebhookEvent]:
        query = select(WebhookEvent).where(WebhookEvent.workspace_id == self.workspace_id)
        if resource_type is not None:
            query = query.where(WebhookEvent.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(WebhookEvent.resource_id == resource_id)
        if cursor is not None:
            query = query.where(_after(WebhookEvent.created_at, WebhookEvent.id, cursor))
        order = (WebhookEvent.created_at, WebhookEvent.id)
        return self._session.scalars(query.order_by(*order).limit(limit)).all()

    # Deliveries.

    def add_delivery(self, delivery: WebhookDelivery) -> WebhookDelivery:
        delivery.workspace_id = self.workspace_id
        self._session.add(delivery)
        self._session.flush()
        return delivery

    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return self._session.scalar(
            select(WebhookDelivery).where(
                WebhookDelivery.workspace_id == self.workspace_id,
                WebhookDelivery.id == delivery_id,
            )
        )

    def deliveries_of_event(self, event_id: str) -> Sequence[WebhookDelivery]:
        return self._session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.workspace_id == self.workspace_id,
                WebhookDelivery.event_id == event_id,
            )
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        ).all()

    def failed_without_retry(
        self,
        *,
        limit: int,
        endpoint_id: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> Sequence[WebhookDelivery]:
        """Failed deliveries whose event has no pending or delivered later delivery to the
        same endpoint (what "resend failed" should send again), oldest first."""
        later = aliased(WebhookDelivery)
        retried = exists().where(
            later.workspace_id == WebhookDelivery.workspace_id,
            later.event_id == WebhookDelivery.event_id,
            later.endpoint_id == WebhookDelivery.endpoint_id,
            later.status.in_([DeliveryStatus.PENDING, DeliveryStatus.DELIVERED]),
        )
        query = select(WebhookDelivery).where(
            WebhookDelivery.workspace_id == self.workspace_id,
            WebhookDelivery.status == DeliveryStatus.FAILED,
            ~retried,
        )
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        if resource_type is not None:
            query = query.where(WebhookDelivery.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(WebhookDelivery.resource_id == resource_id)
        order = (WebhookDelivery.created_at, WebhookDelivery.id)
        return self._session.scalars(query.order_by(*order).limit(limit)).all()

    def pending_for_endpoint(self, endpoint_id: str) -> Sequence[WebhookDelivery]:
        return self._session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.workspace_id == self.workspace_id,
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .with_for_update()
        ).all()

    def list_deliveries(
        self,
        *,
        limit: int,
        cursor: TimeCursor | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery).where(WebhookDelivery.workspace_id == self.workspace_id)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        if event_id is not None:
            query = query.where(WebhookDelivery.event_id == event_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        if cursor is not None:
            query = query.where(_after(WebhookDelivery.created_at, WebhookDelivery.id, cursor))
        order = (WebhookDelivery.created_at, WebhookDelivery.id)
        return self._session.scalars(query.order_by(*order).limit(limit)).all()

    # Attempts (the delivery log).

    def list_attempts(
        self,
        *,
        limit: int,
        cursor: TimeCursor | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
        delivery_id: str | None = None,
    ) -> Sequence[WebhookAttempt]:
        query = select(WebhookAttempt).where(WebhookAttempt.workspace_id == self.workspace_id)
        if endpoint_id is not None:
            query = query.where(WebhookAttempt.endpoint_id == endpoint_id)
        if event_id is not None:
            query = query.where(WebhookAttempt.event_id == event_id)
        if delivery_id is not None:
            query = query.where(WebhookAttempt.delivery_id == delivery_id)
        if cursor is not None:
            query = query.where(_after(WebhookAttempt.started_at, WebhookAttempt.id, cursor))
        order = (WebhookAttempt.started_at, WebhookAttempt.id)
        return self._session.scalars(query.order_by(*order).limit(limit)).all()


class DeliveryQueue:
    """The dispatcher's access to due deliveries across workspaces."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def claim_due(
        self, now: datetime, limit: int
    ) -> Sequence[tuple[WebhookDelivery, WebhookEndpoint, WebhookEvent]]:
        """Lock up to ``limit`` pending deliveries that are due, to enabled endpoints, with no
        earlier event of the same resource still pending to the same endpoint.

        On PostgreSQL rows locked by another dispatcher are skipped (``FOR UPDATE SKIP
        LOCKED``); on SQLite the transaction already holds the write lock.
        """
        earlier = aliased(WebhookDelivery)
        held_back = exists().where(
            earlier.workspace_id == WebhookDelivery.workspace_id,
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.resource_type == WebhookDelivery.resource_type,
            earlier.resource_id == WebhookDelivery.resource_id,
            earlier.seq < WebhookDelivery.seq,
            earlier.status == DeliveryStatus.PENDING,
        )
        query = (
            select(WebhookDelivery, WebhookEndpoint, WebhookEvent)
            .join(
                WebhookEndpoint,
                and_(
                    WebhookEndpoint.workspace_id == WebhookDelivery.workspace_id,
                    WebhookEndpoint.id == WebhookDelivery.endpoint_id,
                ),
            )
            .join(
                WebhookEvent,
                and_(
                    WebhookEvent.workspace_id == WebhookDelivery.workspace_id,
                    WebhookEvent.id == WebhookDelivery.event_id,
                ),
            )
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
                ~held_back,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
            .execution_options(populate_existing=True)
        )
        return [(row[0], row[1], row[2]) for row in self._session.execute(query).all()]

    def lock_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return self._session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def unfinished_attempts(self, delivery_id: str) -> Sequence[WebhookAttempt]:
        return self._session.scalars(
            select(WebhookAttempt).where(
                WebhookAttempt.delivery_id == delivery_id,
                WebhookAttempt.outcome == AttemptOutcome.IN_PROGRESS,
            )
        ).all()

    def get_attempt(self, attempt_id: str) -> WebhookAttempt | None:
        return self._session.get(WebhookAttempt, attempt_id, populate_existing=True)

    def add_attempt(self, attempt: WebhookAttempt) -> WebhookAttempt:
        self._session.add(attempt)
        return attempt

    def purge_finished(self, before: datetime, limit: int) -> tuple[int, int, int]:
        """Delete up to ``limit`` events created before ``before`` that have no pending
        delivery, with their deliveries and attempts; return how many of each went.

        Sequence counters stay, so a resource's later events keep counting up.
        """
        pending = exists().where(
            WebhookDelivery.workspace_id == WebhookEvent.workspace_id,
            WebhookDelivery.event_id == WebhookEvent.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        candidates = list(
            self._session.scalars(
                select(WebhookEvent.id)
                .where(WebhookEvent.created_at < before, ~pending)
                .order_by(WebhookEvent.created_at)
                .limit(limit)
                .with_for_update()
            ).all()
        )
        # A resend locks its event row too; one that committed while we waited for the
        # lock left a pending delivery, which this fresh read sees: keep that event.
        resent = set(
            self._session.scalars(
                select(WebhookDelivery.event_id).where(
                    WebhookDelivery.event_id.in_(candidates),
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                )
            ).all()
        )
        event_ids = [e for e in candidates if e not in resent]
        if not event_ids:
            return 0, 0, 0
        attempts = self._session.execute(
            delete(WebhookAttempt).where(WebhookAttempt.event_id.in_(event_ids))
        )
        deliveries = self._session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(event_ids))
        )
        events = self._session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(event_ids)))
        return (
            int(events.rowcount),  # type: ignore[attr-defined]
            int(deliveries.rowcount),  # type: ignore[attr-defined]
            int(attempts.rowcount),  # type: ignore[attr-defined]
        )
