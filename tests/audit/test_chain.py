"""The audit chain: appends verify, every kind of tampering made in the database is caught
and located, concurrent appends never fork a chain. Runs on SQLite and PostgreSQL."""

import threading

import pytest
from sqlalchemy import event, select, text, update

from shardvault.audit import (
    Actor,
    AuditChainBroken,
    AuditLog,
    AuditSigner,
    ChainReport,
    all_chains,
    verify_chain,
)
from shardvault.audit.encoding import HEAD_TAG, event_fields, event_hash, head_message
from shardvault.store import Database
from shardvault.store.models import (
    SYSTEM_CHAIN,
    AuditChainHead,
    AuditEvent,
    PrincipalStatus,
    Role,
    User,
)
from shardvault.store.repositories import WorkspaceRepository

CHECKPOINT_EVERY = 4


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner.generate()


def _workspace(database: Database) -> str:
    with database.transaction() as session:
        return WorkspaceRepository(session).add("acme").id


def _append(database: Database, signer: AuditSigner, workspace_id: str | None, count: int) -> None:
    with database.transaction() as session:
        log = AuditLog(session, signer, checkpoint_interval=CHECKPOINT_EVERY)
        for index in range(count):
            log.append(
                workspace_id=workspace_id,
                actor=Actor.api_key("key-1"),
                action="user.create",
                resource_type="user",
                resource_id=f"user-{index}",
                details={"index": index, "email": f"u{index}@example.com", "tags": ["a", None]},
            )


def _ids_by_seq(database: Database, chain: str) -> dict[int, str]:
    with database.transaction() as session:
        rows = session.execute(
            select(AuditEvent.seq, AuditEvent.id).where(AuditEvent.chain == chain)
        ).all()
    return {seq: event_id for seq, event_id in rows}


def _verify(database: Database, signer: AuditSigner, chain: str) -> ChainReport:
    with database.transaction() as session:
        return verify_chain(session, chain, signer.keyring())


def _sql(database: Database, statement: str, **params: object) -> None:
    with database.engine.begin() as conn:
        conn.execute(text(statement), params)


@pytest.fixture
def chain10(database: Database, signer: AuditSigner) -> tuple[Database, str, dict[int, str]]:
    workspace_id = _workspace(database)
    _append(database, signer, workspace_id, 10)
    return database, workspace_id, _ids_by_seq(database, workspace_id)


def test_appended_chains_verify_and_checkpoint(database: Database, signer: AuditSigner) -> None:
    first = _workspace(database)
    second = _workspace(database)
    _append(database, signer, first, 9)
    _append(database, signer, second, 3)
    _append(database, signer, None, 2)
    with database.transaction() as session:
        reports = {c: verify_chain(session, c, signer.keyring()) for c in all_chains(session)}
    assert set(reports) == {first, second, SYSTEM_CHAIN}
    assert (reports[first].events, reports[first].checkpoints) == (9, 2)
    assert (reports[second].events, reports[second].checkpoints) == (3, 0)
    assert reports[SYSTEM_CHAIN].events == 2


def test_one_head_read_per_transaction_and_a_later_transaction_reads_it_again(
    database: Database, signer: AuditSigner
) -> None:
    """Events of one transaction reuse the head row it locked; the same session's next
    transaction must not: another writer may have moved the head in between."""
    workspace = _workspace(database)
    _append(database, signer, workspace, 1)  # the chain's head row exists
    heads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "audit_chain_heads" in statement:
            heads.append(statement)

    session = database.new_session()
    log = AuditLog(session, signer, checkpoint_interval=CHECKPOINT_EVERY)
    event.listen(database.engine, "before_cursor_execute", count)
    try:
        with session.begin():
            for index in range(3):
                log.append(workspace_id=workspace, actor=Actor.system(), action=f"a.{index}")
        assert len(heads) == 1
        _append(database, signer, workspace, 2)  # another writer moves the head
        with session.begin():
            log.append(workspace_id=workspace, actor=Actor.system(), action="a.later")
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
        session.close()
    assert len(heads) == 3  # ours, the other writer's, ours again in the new transaction
    report = _verify(database, signer, workspace)
    assert report.events == 7


def test_event_in_a_rolled_back_transaction_leaves_no_trace(
    database: Database, signer: AuditSigner
) -> None:
    workspace_id = _workspace(database)
    _append(database, signer, workspace_id, 2)

    def doomed_change() -> None:
        with database.transaction() as session:
            AuditLog(session, signer).append(
                workspace_id=workspace_id, actor=Actor.system(), action="doomed"
            )
            raise RuntimeError("the change fails after its event was written")

    with pytest.raises(RuntimeError):
        doomed_change()
    assert sorted(_ids_by_seq(database, workspace_id)) == [1, 2]
    _verify(database, signer, workspace_id)


class _CountingSigner(AuditSigner):
    """Counts the head signatures it makes (a head message's tag is its own)."""

    heads = 0

    def sign(self, message: bytes) -> bytes:
        if message.startswith(HEAD_TAG + b"\x00"):
            type(self).heads += 1
        return super().sign(message)


def test_a_transaction_signs_its_moved_head_once_per_flush(database: Database) -> None:
    """Appends move the head; it is signed as it stands when the transaction flushes,
    not once per event, and a rolled-back transaction leaves no head to sign."""
    signer = _CountingSigner.generate()
    assert isinstance(signer, _CountingSigner)
    workspace = _workspace(database)
    _CountingSigner.heads = 0
    _append(database, signer, workspace, 6)
    assert _CountingSigner.heads == 1
    with database.transaction() as session:
        log = AuditLog(session, signer, checkpoint_interval=CHECKPOINT_EVERY)
        log.append(workspace_id=workspace, actor=Actor.system(), action="a.1")
        session.flush()
        log.append(workspace_id=workspace, actor=Actor.system(), action="a.2")
    assert _CountingSigner.heads == 3  # one per flush that wrote a moved head
    session = database.new_session()
    transaction = session.begin()
    AuditLog(session, signer).append(workspace_id=workspace, actor=Actor.system(), action="x")
    transaction.rollback()  # before any flush
    with session.begin():
        session.flush()  # nothing left over to sign
    session.close()
    assert _CountingSigner.heads == 3
    report = _verify(database, signer, workspace)
    assert report.events == 8


def test_an_append_locks_the_head_after_the_rows_it_writes(
    database: Database, signer: AuditSigner
) -> None:
    """Lock order: a transaction's pending rows (which key-share lock the workspace they
    reference, on PostgreSQL) are written before its append locks the chain head. An
    append that locked the head first deadlocked against a transaction holding the
    workspace lock (the pipeline's evaluation) and appending in its turn."""
    workspace = _workspace(database)
    _append(database, signer, workspace, 1)
    errors: list[BaseException] = []
    appended = threading.Event()

    def writer() -> None:
        try:
            with database.transaction() as session:
                session.add(User(workspace_id=workspace, name="n", email="n@x.example",
                                 role=Role.VIEWER, status=PrincipalStatus.ACTIVE))  # fmt: skip
                AuditLog(session, signer).append(
                    workspace_id=workspace, actor=Actor.system(), action="user.create"
                )
                appended.set()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    with database.transaction() as holder:
        WorkspaceRepository(holder).lock(workspace)  # as an evaluation does
        thread = threading.Thread(target=writer)
        thread.start()
        # The writer blocks on the workspace: before the head (correct order), or, if
        # it took the head first, at its commit (the deadlock to come).
        # (On SQLite it waits for the write lock, at its start.)
        assert not appended.wait(0.5)
        AuditLog(holder, signer).append(
            workspace_id=workspace, actor=Actor.system(), action="evaluation"
        )
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert _verify(database, signer, workspace).events == 3


def _expect_broken(
    database: Database, signer: AuditSigner, chain: str, kind: str, seq: int, event_id: str | None
) -> AuditChainBroken:
    with pytest.raises(AuditChainBroken) as caught:
        _verify(database, signer, chain)
    assert (caught.value.kind, caught.value.seq, caught.value.event_id) == (kind, seq, event_id)
    assert f"seq {seq}" in str(caught.value)
    return caught.value


def test_edited_field_is_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, ids = chain10
    _sql(database, "UPDATE audit_events SET resource_id = 'someone-else' WHERE id = :i", i=ids[5])
    _expect_broken(database, signer, chain, "edited", 5, ids[5])


def test_edited_details_is_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, ids = chain10
    _sql(database, "UPDATE audit_events SET details = '{}' WHERE id = :i", i=ids[2])
    _expect_broken(database, signer, chain, "edited", 2, ids[2])


def test_edit_with_recomputed_hash_is_a_forgery(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    """Someone who knows the encoding but not the audit key rewrites event 6 consistently."""
    database, chain, ids = chain10
    with database.transaction() as session:
        event = session.get(AuditEvent, ids[6])
        assert event is not None
        event.action = "nothing.happened"
        event.hash = _hash_of(event)
    _expect_broken(database, signer, chain, "forged", 6, ids[6])


def _hash_of(event: AuditEvent) -> str:
    return event_hash(
        event_fields(
            event_id=event.id,
            chain=event.chain,
            seq=event.seq,
            workspace_id=event.workspace_id,
            occurred_at=event.occurred_at,
            actor_type=event.actor_type,
            actor_id=event.actor_id,
            action=event.action,
            outcome=event.outcome,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            details=event.details,
            prev_hash=event.prev_hash,
        )
    )


def test_deleted_event_is_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, ids = chain10
    _sql(database, "DELETE FROM audit_events WHERE id = :i", i=ids[7])
    error = _expect_broken(database, signer, chain, "missing", 7, ids[8])
    assert "seq 7 deleted" in error.detail


def test_deleted_newest_event_is_truncation(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, ids = chain10
    _sql(database, "DELETE FROM audit_events WHERE id = :i", i=ids[10])
    _expect_broken(database, signer, chain, "truncated", 10, None)


def test_truncation_with_rolled_back_head_is_caught_by_checkpoint(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    """Events 7 to 10 go and the head is moved back to the genuinely signed head of seq 6
    (as if the attacker had saved it then); the signed checkpoint at seq 8 still names an
    event that is gone, so the truncation is caught."""
    database, chain, ids = chain10
    _sql(database, "DELETE FROM audit_events WHERE chain = :c AND seq >= 7", c=chain)
    with database.transaction() as session:
        six = session.scalar(select(AuditEvent).where(AuditEvent.id == ids[6]))
        assert six is not None
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.chain == chain)
            .values(
                last_seq=6,
                last_hash=six.hash,
                signature=signer.sign(head_message(chain, 6, six.hash)),
            )
        )
    _expect_broken(database, signer, chain, "truncated", 7, None)


def test_inserted_forged_event_is_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    """A forged event is slipped in after seq 4, later events renumbered to make room, and
    the forged event's hash and prev_hash computed correctly."""
    database, chain, ids = chain10
    _sql(database, "UPDATE audit_events SET seq = seq + 1000 WHERE chain = :c AND seq > 4", c=chain)
    _sql(
        database, "UPDATE audit_events SET seq = seq - 999 WHERE chain = :c AND seq > 1000", c=chain
    )
    with database.transaction() as session:
        four = session.scalar(select(AuditEvent).where(AuditEvent.id == ids[4]))
        assert four is not None
        forged = AuditEvent(
            id="00000000-0000-4000-8000-000000000000",
            chain=chain,
            seq=5,
            workspace_id=chain,
            occurred_at=four.occurred_at,
            actor_type="api_key",
            actor_id="key-1",
            action="api_key.create",
            outcome="success",
            resource_type="api_key",
            resource_id="attacker",
            details="{}",
            prev_hash=four.hash,
            hash="",
            key_id=four.key_id,
            signature=four.signature,
        )
        forged.hash = _hash_of(forged)
        session.add(forged)
    _expect_broken(database, signer, chain, "forged", 5, forged.id)


def test_appended_forged_event_is_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, ids = chain10
    with database.transaction() as session:
        ten = session.scalar(select(AuditEvent).where(AuditEvent.id == ids[10]))
        assert ten is not None
        forged = AuditEvent(
            id="00000000-0000-4000-8000-000000000001",
            chain=chain,
            seq=11,
            workspace_id=chain,
            occurred_at=ten.occurred_at,
            actor_type="system",
            actor_id=None,
            action="policy.activate",
            outcome="success",
            resource_type=None,
            resource_id=None,
            details="{}",
            prev_hash=ten.hash,
            hash="",
            key_id=ten.key_id,
            signature="00" * 64,
        )
        forged.hash = _hash_of(forged)
        session.add(forged)
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.chain == chain)
            .values(last_seq=11, last_hash=forged.hash)
        )
    _expect_broken(database, signer, chain, "forged", 11, forged.id)


def test_swapped_events_are_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, ids = chain10
    _sql(database, "UPDATE audit_events SET seq = -3 WHERE id = :i", i=ids[3])
    _sql(database, "UPDATE audit_events SET seq = 3 WHERE id = :i", i=ids[8])
    _sql(database, "UPDATE audit_events SET seq = 8 WHERE id = :i", i=ids[3])
    _expect_broken(database, signer, chain, "edited", 3, ids[8])


def test_edited_checkpoint_is_located(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    database, chain, _ = chain10
    _sql(
        database,
        "UPDATE audit_checkpoints SET hash = :h WHERE chain = :c AND seq = 8",
        h="ab" * 32,
        c=chain,
    )
    _expect_broken(database, signer, chain, "checkpoint", 8, None)


def test_chain_rewritten_under_another_key_is_refused(
    chain10: tuple[Database, str, dict[int, str]], signer: AuditSigner
) -> None:
    """An attacker rebuilds the whole chain with a key of their own: the verifier only
    trusts the server's key, so the very first event is reported."""
    database, chain, _ = chain10
    _sql(database, "DELETE FROM audit_events WHERE chain = :c", c=chain)
    _sql(database, "DELETE FROM audit_checkpoints WHERE chain = :c", c=chain)
    _sql(database, "DELETE FROM audit_chain_heads WHERE chain = :c", c=chain)
    _append(database, AuditSigner.generate(), chain, 3)
    first = _ids_by_seq(database, chain)[1]
    error = _expect_broken(database, signer, chain, "forged", 1, first)
    assert "unknown audit key" in error.detail


def test_concurrent_appends_never_fork(database: Database, signer: AuditSigner) -> None:
    threads = 6
    workspace_id = _workspace(database)
    per_thread = 8
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                _append(database, signer, workspace_id, 1)
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)

    workers: list[threading.Thread] = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(_ids_by_seq(database, workspace_id)) == list(range(1, threads * per_thread + 1))
    _verify(database, signer, workspace_id)


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [
        ("id", "'00000000-0000-4000-8000-00000000abcd'", "edited"),
        ("workspace_id", "NULL", "edited"),
        ("occurred_at", "occurred_at", "edited"),  # replaced below by a shifted timestamp
        ("actor_type", "'system'", "edited"),
        ("actor_id", "'key-2'", "edited"),
        ("action", "'user.delete'", "edited"),
        ("outcome", "'refused'", "edited"),
        ("resource_type", "'api_key'", "edited"),
        ("resource_id", "NULL", "edited"),
        ("details", "'{\"index\": 99}'", "edited"),
        ("prev_hash", "'" + "1" * 64 + "'", "edited"),
        ("hash", "'" + "2" * 64 + "'", "edited"),
        ("key_id", "'ffffffffffffffff'", "forged"),
        ("signature", "'" + "00" * 64 + "'", "forged"),
    ],
)
def test_every_stored_column_is_protected(
    chain10: tuple[Database, str, dict[int, str]],
    signer: AuditSigner,
    column: str,
    value: str,
    kind: str,
) -> None:
    """Changing any single column of event 5 is reported at event 5."""
    database, chain, ids = chain10
    if column == "occurred_at":
        with database.transaction() as session:
            event = session.get(AuditEvent, ids[5])
            assert event is not None
            event.occurred_at = event.occurred_at.replace(
                microsecond=(event.occurred_at.microsecond + 1) % 10**6
            )
        moved_id = ids[5]
    else:
        _sql(database, f"UPDATE audit_events SET {column} = {value} WHERE id = :i", i=ids[5])
        moved_id = "00000000-0000-4000-8000-00000000abcd" if column == "id" else ids[5]
    _expect_broken(database, signer, chain, kind, 5, moved_id)


def test_checkpoint_on_demand(database: Database, signer: AuditSigner) -> None:
    workspace_id = _workspace(database)
    with database.transaction() as session:
        assert AuditLog(session, signer).checkpoint(workspace_id) is None  # empty chain
    _append(database, signer, workspace_id, 3)
    with database.transaction() as session:
        log = AuditLog(session, signer)
        first = log.checkpoint(workspace_id)
        again = log.checkpoint(workspace_id)
    assert first is not None
    assert again is not None
    assert (first.seq, again.id) == (3, first.id)
    with database.transaction() as session:
        assert verify_chain(session, workspace_id, signer.keyring()).checkpoints == 1
    _sql(
        database,
        "UPDATE audit_checkpoints SET signature = :s WHERE id = :i",
        s="00" * 64,
        i=first.id,
    )
    _expect_broken(database, signer, workspace_id, "checkpoint", 3, None)


def test_bad_append_arguments_are_refused(database: Database, signer: AuditSigner) -> None:
    from shardvault.audit import AuditDetailsError

    workspace_id = _workspace(database)
    with database.transaction() as session:
        log = AuditLog(session, signer)
        with pytest.raises(AuditDetailsError):
            log.append(
                workspace_id=workspace_id, actor=Actor.system(), action="x", details={"f": 0.5}
            )
        with pytest.raises(ValueError, match="outcome"):
            log.append(workspace_id=workspace_id, actor=Actor.system(), action="x", outcome="maybe")
    with pytest.raises(ValueError, match="checkpoint_interval"):
        AuditLog(database.new_session(), signer, checkpoint_interval=0)
    assert _ids_by_seq(database, workspace_id) == {}
