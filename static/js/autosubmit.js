// A select marked data-autosubmit submits its form on change (no inline handlers: the CSP allows none).
document.addEventListener("change", (e) => {
  if (e.target.matches("select[data-autosubmit]")) e.target.form.submit();
});
