"""The domain services: workspaces, vaults, wallets, transactions, approvals, signing."""
