"""The three roles are Django groups; what each may do is a permission, checked with has_perm."""

CONTRIBUTOR = "contributor"
MODERATOR = "moderator"
ADMIN = "admin"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    CONTRIBUTOR: ["moderation.add_submission"],
    MODERATOR: [
        "moderation.review_submission",
        "moderation.view_all_submissions",
        "audit.view_auditevent",
    ],
    ADMIN: [
        "moderation.add_submission",
        "moderation.review_submission",
        "moderation.view_all_submissions",
        "audit.view_auditevent",
        "moderation.view_statistics",
        "moderation.configure_detector",
        "moderation.change_decisionreason",
        "moderation.add_decisionreason",
        "detection.change_modelsetting",
    ],
}
