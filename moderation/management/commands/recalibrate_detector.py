"""manage.py recalibrate_detector: thin wrapper over moderation.recalibration."""

from django.core.management.base import BaseCommand, CommandError

from common.errors import DomainError
from moderation import recalibration


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


class Command(BaseCommand):
    help = (
        "Choose a model's thresholds again from moderators' decisions merged with its held-out validation "
        "scores (same confidence bound as calibration); shows before/after rates, changes nothing without --apply."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, help="bundle name under DETECTOR_WEIGHTS_DIR")
        parser.add_argument("--apply", action="store_true", help="apply the proposed thresholds (audited, revertible)")

    def handle(self, *args, **options) -> None:
        name = options["model"]
        try:
            proposal = recalibration.recalibration_propose(model_name=name)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        if proposal.note:
            self.stdout.write(self.style.WARNING(proposal.note))
        proposed = proposal.proposed
        self.stdout.write(
            f"{name} {proposal.version}: proposed low {proposed['low']:.4f}, high {proposed['high']:.4f} "
            f"(at most {proposed['false_flag_target']:.0%} false flags with {proposed['false_flag_confidence']:.0%} "
            f"confidence over {', '.join(proposed['false_flag_populations'])})"
        )
        for row in proposal.rates:
            before, after = row["before"], row["after"]
            self.stdout.write(
                f"  {row['population']}: false flags {_rate(before['false_flag_rate'])} -> "
                f"{_rate(after['false_flag_rate'])} of {before['reals']} genuine, recall {_rate(before['recall'])} -> "
                f"{_rate(after['recall'])} of {before['ais']} AI"
            )
        if not options["apply"]:
            self.stdout.write("Nothing changed; run again with --apply to apply these thresholds to every scenery.")
            return
        change = recalibration.recalibration_apply(
            model_name=name, confirmed_low=proposed["low"], confirmed_high=proposed["high"], actor=None
        )
        self.stdout.write(
            self.style.SUCCESS(f"Applied as threshold change #{change.pk} (revertible on the models page).")
        )
