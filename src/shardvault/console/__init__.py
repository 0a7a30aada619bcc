"""The operators' and approvers' web console."""
