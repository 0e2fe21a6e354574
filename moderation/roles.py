"""The three roles are Django groups; what each may do is a permission, checked with has_perm. The
grants are made by migrations (moderation 0002, webhooks 0002; the audit app carries the audit permission)."""

CONTRIBUTOR = "contributor"
MODERATOR = "moderator"
ADMIN = "admin"
