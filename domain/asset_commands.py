"""The service layer's commands for assets: record an upload, read, delete, and check
the assets a script names.

A mixin of `PhantomFlow` (domain/application.py): it uses the application's finder,
`save`, accounts and conflict retries. The bytes are stored (and probed) by the API
before anything is recorded here; a deletion is recorded before the bytes go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from phantomflow.domain.assets import (
    Asset,
    AssetNotFound,
    AssetReferenceInvalid,
    AssetUse,
    parse_asset_ref,
)
from phantomflow.domain.concurrency import ConflictRetries

if TYPE_CHECKING:
    from phantomflow.domain.accounts import CreditAccount

A = TypeVar("A")


@dataclass(frozen=True)
class NewAsset:
    """A file stored and probed, to be recorded as an asset."""

    asset_id: UUID  # chosen by the caller, which stores the file under its key first
    name: str
    sha256: str
    size: int
    key: str
    type: str
    mime_type: str
    width: int | None
    height: int | None
    duration_seconds: float | None


@dataclass(frozen=True)
class StorageUse:
    used_bytes: int
    limit_bytes: int
    max_file_bytes: int


class AssetCommands:
    """Mixed into the application, whose save, finder and conflict retries it uses."""

    if TYPE_CHECKING:
        retries: ConflictRetries
        save: Callable[..., Any]

        def _find(self, aggregate_id: UUID, kind: type[A]) -> A | None: ...

        def get_account(self, account_id: UUID) -> CreditAccount: ...

    def storage_use(self, account_id: UUID) -> StorageUse:
        account = self.get_account(account_id)
        return StorageUse(account.storage_used, account.storage_limit_bytes, account.max_file_bytes)

    def stored_asset(self, account_id: UUID, sandbox: bool, sha256: str) -> Asset | None:
        """The account's asset of this content in this key mode, if there is one."""
        asset_id = self.get_account(account_id).stored_asset(sandbox, sha256)
        return None if asset_id is None else self._find(asset_id, Asset)

    def check_storage(self, account_id: UUID, required_bytes: int) -> None:
        """StorageLimitExceeded unless `required_bytes` more fit the account's plan."""
        self.get_account(account_id).check_storage(required_bytes)

    def record_assets(
        self, account_id: UUID, sandbox: bool, uploads: list[NewAsset]
    ) -> tuple[list[Asset], int | None]:
        """Record stored files as the account's assets, all or none (one save, so the
        quota is checked on their sum): an upload whose content the account already
        holds in this key mode is answered with that asset and recorded no further.
        Raises StorageLimitExceeded. Returns the assets, in order, and where the last
        event landed (None if nothing was recorded)."""

        def record() -> tuple[list[Asset], int | None]:
            with self.retries.local_lock(account_id):
                return record_once()

        def record_once() -> tuple[list[Asset], int | None]:
            account = self.get_account(account_id)
            found: list[Asset] = []
            created: dict[str, Asset] = {}
            for upload in uploads:
                existing = account.stored_asset(sandbox, upload.sha256)
                asset = (
                    created.get(upload.sha256) if existing is None else self._find(existing, Asset)
                )
                if asset is None:
                    asset = Asset(
                        id=upload.asset_id,
                        account_id=account_id,
                        sandbox=sandbox,
                        name=upload.name,
                        sha256=upload.sha256,
                        size=upload.size,
                        key=upload.key,
                    )
                    asset.record_probe(
                        upload.type,
                        upload.mime_type,
                        upload.width,
                        upload.height,
                        upload.duration_seconds,
                    )
                    created[upload.sha256] = asset
                found.append(asset)
            required = sum(asset.size for asset in created.values())
            account.check_storage(required)
            for asset in created.values():
                account.store_asset(asset.id, sandbox, asset.sha256, asset.size)
            if not created:
                return found, None
            recordings = self.save(account, *created.values())
            return found, max((r.notification.id for r in recordings), default=None)

        return self.retries.run(record, account_id)

    def get_asset(self, account_id: UUID, sandbox: bool, ref: Any) -> Asset:
        """The caller's asset with public id `ref`; AssetNotFound otherwise."""
        asset_id = parse_asset_ref(ref)
        asset = None if asset_id is None else self._find(asset_id, Asset)
        if asset is None:
            raise AssetNotFound(f"No asset {ref}.")
        asset.check_usable_by(account_id, sandbox)
        return asset

    def asset_by_ref(self, ref: str) -> Asset:
        """The asset, deleted or not, whoever owns it: what a worker resolves a job's
        reference with (the job was checked when it was submitted)."""
        asset_id = parse_asset_ref(ref)
        asset = None if asset_id is None else self._find(asset_id, Asset)
        if asset is None:
            raise AssetNotFound(f"No asset {ref}.")
        return asset

    def delete_asset(self, account_id: UUID, sandbox: bool, ref: Any) -> tuple[Asset, int | None]:
        """Record the deletion and give its bytes back to the account. Raises
        AssetNotFound, or AssetInUse while a queued or processing job holds it.
        Returns the asset (its stored object is then deleted by the caller) and where
        the last event landed."""

        def delete() -> tuple[Asset, int | None]:
            with self.retries.local_lock(account_id):
                asset = self.get_asset(account_id, sandbox, ref)
                account = self.get_account(account_id)
                account.remove_asset(asset.id, sandbox, asset.sha256)
                asset.delete()
                recordings = self.save(account, asset)
                position = max((r.notification.id for r in recordings), default=None)
                return asset, position

        return self.retries.run(delete, account_id)

    def check_asset_uses(self, account_id: UUID, sandbox: bool, uses: list[AssetUse]) -> list[UUID]:
        """The ids of the assets a script names, each checked: the caller's (its
        account and key mode), not deleted, of the type its place takes. Raises
        AssetReferenceInvalid at the first place that breaks a rule."""
        checked: list[UUID] = []
        for use in uses:
            try:
                asset = self.get_asset(account_id, sandbox, use.ref)
            except AssetNotFound:
                raise AssetReferenceInvalid(
                    use.path, f"No asset {use.ref} (unknown, deleted or another account's)"
                ) from None
            if asset.type != use.type:
                raise AssetReferenceInvalid(
                    use.path, f"Asset {use.ref} is {_a(asset.type)}; {_a(use.type)} is expected"
                )
            checked.append(asset.id)
        return list(dict.fromkeys(checked))


def _a(kind: str | None) -> str:
    return f"an {kind}" if kind and kind[0] in "aeiou" else f"a {kind}"
