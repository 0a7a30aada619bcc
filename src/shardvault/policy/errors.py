"""Errors of the policy layer.

One root, :class:`PolicyError`, with a category per kind of untrusted input: policy and
address-book documents (:class:`PolicyDocumentError`), transaction requests, history and
context (:class:`RequestError`, :class:`ContextError`), configuration keys
(:class:`ConfigurationKeyError`), signed policy bundles (:class:`BundleError`) and signed
approvals (:class:`ApprovalError`), the asset registry's answers about a payload
(:class:`AssetRegistryError`) and signed price reports (:class:`PriceReportError`).
Each error names the path or the party at fault and
never carries a signature or key material beyond public identifiers.
"""

from shardvault.errors import ShardvaultError


class PolicyError(ShardvaultError):
    """Root of the policy layer's errors.

    ``path`` names the place in the input at fault (``rules[2].when.amount.over``) when
    there is one.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class PolicyDocumentError(PolicyError):
    """A policy or address-book document that does not parse or is not valid."""


class UnknownFieldError(PolicyDocumentError):
    """A field the language does not define. Unknown fields are rejected, never ignored,
    so that a misspelt condition cannot silently widen a rule."""


class SchemaViolationError(PolicyDocumentError):
    """A document that the published JSON Schema rejects."""


class RequestError(PolicyError):
    """A transaction request or history entry that is malformed."""


class ContextError(PolicyError):
    """An evaluation context that is malformed or inconsistent (prices, history)."""


class ConfigurationKeyError(PolicyError):
    """A configuration or approver public key that does not decode, or a signature that
    is not in an accepted encoding."""


class BundleError(PolicyError):
    """A signed policy bundle that must be refused."""


class MalformedBundleError(BundleError):
    """A bundle whose encoding is not well formed."""


class WrongWorkspaceError(BundleError):
    """A bundle made for another workspace."""


class UnknownSignerError(BundleError):
    """A bundle signature from someone outside the pinned admin set."""


class BadBundleSignatureError(BundleError):
    """An admin's signature over the bundle that does not verify."""


class DuplicateSignerError(BundleError):
    """The same admin signed a bundle more than once."""


class QuorumNotMetError(BundleError):
    """Fewer valid admin signatures than the pinned quorum."""


class ReplayedBundleError(BundleError):
    """A bundle whose version is not newer than the chain's head: an old bundle
    presented again."""


class BrokenChainError(BundleError):
    """A bundle whose predecessor hash is not the hash of the chain's head, or whose
    version skips ahead."""


class UnsignedInputError(BundleError):
    """A bundle with a rule that decides on something no trusted key signs: the
    initiator without the bundle's initiator keys, source tags, a wallet that is not a
    derivation path, or a value limit with no static price or price key for an asset it
    can see. A co-signer could only take it from the coordinator's word; refused when a
    bundle is offered (:func:`~shardvault.policy.signed_inputs.refuse_unsigned_inputs`)."""


class AssetRegistryError(PolicyError):
    """A payload's network or asset that the signed asset registry does not name (or,
    without a registry, that the built-in defaults do not)."""


class UnknownNetworkError(AssetRegistryError):
    """A payload on a network the registry does not list."""


class UnknownAssetError(AssetRegistryError):
    """A payload moving an asset the registry does not list on its network (an
    unregistered token, a native asset the network's entry leaves out, decimals that
    disagree with the registry's)."""


class PriceReportError(PolicyError):
    """A price report that is malformed or not signed by a price key the bundle names,
    or that names an asset, a currency or a time the bundle does not allow. A report
    that is merely older than ``max_price_age`` is not an error: it is not used."""


class ApprovalError(PolicyError):
    """A signed approval that does not count."""


class ApprovalForAnotherTransactionError(ApprovalError):
    """An approval whose signed digest is not the digest of the transaction evaluated."""


class ApprovalForAnotherPolicyError(ApprovalError):
    """An approval signed under another policy version."""


class UnknownApproverError(ApprovalError):
    """An approval from someone the policy does not list as a member with a key."""


class ApproverNotInGroupError(ApprovalError):
    """An approval from a member outside every group the matched rule requires."""


class DuplicateApproverError(ApprovalError):
    """A second approval from an approver who already approved."""


class SelfApprovalError(ApprovalError):
    """An approval of a request by the member who initiated it: nobody approves their
    own request (separation of duties)."""


class BadApprovalSignatureError(ApprovalError):
    """An approval signature that does not verify under the approver's key."""


class ApprovalExpiredError(ApprovalError):
    """An approval whose lifetime (the rule's deadline, counted from the statement's own
    ``signed_at``) has passed: an old approval presented again."""


class ApprovalFromTheFutureError(ApprovalError):
    """An approval whose ``signed_at`` lies further ahead of the evaluation's clock than
    the allowed skew: counted from it, the statement would outlive its lifetime."""
