from django import forms

from detection.models import Scenery


class ModelActivateForm(forms.Form):
    model_name = forms.ChoiceField()

    def __init__(self, *args, model_names: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_name"].choices = [(n, n) for n in model_names]


class ThresholdsForm(forms.Form):
    """A low and a high field per scenery; both empty means the model card's band for that scenery."""

    def __init__(self, *args, card_band: dict, current: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for value, label in Scenery.choices:
            for bound in ("low", "high"):
                self.fields[f"{value}_{bound}"] = forms.FloatField(
                    required=False,
                    min_value=0,
                    max_value=1,
                    label=f"{label} {bound}",
                    initial=current.get(value, {}).get(bound),
                    widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": f"{card_band[bound]:.2f}"}),
                )

    def rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(label, self[f"{value}_low"], self[f"{value}_high"]) for value, label in Scenery.choices]

    def clean(self) -> dict:
        data = super().clean()
        bands = {}
        for value, label in Scenery.choices:
            low, high = data.get(f"{value}_low"), data.get(f"{value}_high")
            if low is None and high is None:
                continue
            if low is None or high is None or low > high:
                self.add_error(f"{value}_low", f"{label}: give both bounds, low not above high.")
                continue
            bands[value] = {"low": low, "high": high}
        data["bands"] = bands
        return data
