from django import forms

from moderation.models import Decision, DecisionReason


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(choices=Decision.Outcome.choices, widget=forms.HiddenInput)
    reason = forms.ModelChoiceField(queryset=DecisionReason.objects.filter(active=True), to_field_name="code")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def clean(self) -> dict:
        data = super().clean()
        reason, outcome = data.get("reason"), data.get("outcome")
        if reason and outcome and reason.applies_to != outcome:
            self.add_error("reason", "That reason does not fit this decision.")
        return data
