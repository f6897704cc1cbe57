//! What the commands that add and edit a tenant's flow (`connections`, `marketplace`) share:
//! secrets read from the environment or a hidden prompt (never flags: flags show up in shell
//! history and in `ps`), every field's problem listed at once with the flag it came from, and
//! the way a flow is named on the command line.

use crate::exit::{Exit, Failure};
use engine::connection_form::FieldError;
use std::io::IsTerminal as _;

/// A secret a form needs, and where it comes from.
#[derive(Debug, Clone)]
pub struct SecretInput {
    /// The form's field (`odoo_api_key`, `api_token`).
    pub field: &'static str,
    /// The environment variable it is read from.
    pub env_var: String,
    /// What it is called in messages (`API key`, `Cartona token`).
    pub what: &'static str,
    /// What a person calls it for short (`key`, `token`).
    pub noun: &'static str,
    /// The question asked on a terminal.
    pub prompt: String,
}

/// The value of `var`, if set and not blank.
pub fn secret_from_env(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Asks on the terminal, without echoing the answer.
pub fn prompt_secret(input: &SecretInput) -> Result<String, Failure> {
    let value = rpassword::prompt_password(&input.prompt).map_err(|error| {
        Failure::new(
            Exit::Config,
            anyhow::anyhow!("cannot read the {} from the terminal: {error}", input.what),
        )
    })?;
    Ok(value.trim().to_owned())
}

/// The problem of a secret that is neither in its variable nor typed.
pub fn missing_secret(input: &SecretInput) -> FieldError {
    FieldError {
        field: input.field,
        message: format!(
            "is missing: set the environment variable (the {} is never taken as a flag: flags \
             show up in shell history and `ps`), or run on a terminal to be asked for it",
            input.noun
        ),
    }
}

/// How a form's problems are said: what the form is (`connection`), the flag each field
/// comes from, and which fields are secrets from the environment.
pub struct FormMessages<'a> {
    pub subject: &'a str,
    pub flag_of: &'a dyn Fn(&str) -> String,
    pub secrets: &'a [SecretInput],
}

impl FormMessages<'_> {
    /// Every field's problem. Bad flag values exit 2 like clap's own refusals; a missing
    /// secret (an environment variable) is configuration, exit 3.
    pub fn invalid(&self, errors: &[FieldError]) -> Failure {
        let mut text = format!(
            "the {} is not valid ({} problem{}):",
            self.subject,
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        for error in errors {
            text.push_str(&format!(
                "\n  {}: {}",
                (self.flag_of)(error.field),
                error.message
            ));
        }
        let secret_missing = errors
            .iter()
            .any(|error| self.secrets.iter().any(|input| input.field == error.field));
        let exit = if secret_missing {
            Exit::Config
        } else {
            Exit::Usage
        };
        Failure::new(exit, anyhow::anyhow!(text))
    }
}

/// Validates a draft that needs the secrets `messages.secrets`: each is read from its
/// variable, or, when unset and stdin is a terminal, asked for (hidden) once every other
/// field is valid. `set` puts a secret into the draft; `field_order` is the form's order, in
/// which problems are listed.
pub fn validate_with_secrets<D, T>(
    draft: &mut D,
    messages: &FormMessages<'_>,
    set: impl Fn(&mut D, &'static str, String),
    validate: impl Fn(&D) -> Result<T, Vec<FieldError>>,
    field_order: impl Fn(&str) -> usize,
) -> Result<T, Failure> {
    let mut unset = Vec::new();
    for input in messages.secrets {
        match secret_from_env(&input.env_var) {
            Some(value) => set(draft, input.field, value),
            None => unset.push(input),
        }
    }
    if unset.is_empty() {
        return validate(draft).map_err(|errors| messages.invalid(&errors));
    }
    // Some secret is missing: check everything else first.
    let mut errors = validate(draft).err().unwrap_or_default();
    errors.retain(|error| !unset.iter().any(|input| input.field == error.field));
    if !std::io::stdin().is_terminal() {
        for input in &unset {
            let at = errors
                .iter()
                .position(|error| field_order(error.field) > field_order(input.field))
                .unwrap_or(errors.len());
            errors.insert(at, missing_secret(input));
        }
    }
    if !errors.is_empty() {
        return Err(messages.invalid(&errors));
    }
    for input in unset {
        let value = prompt_secret(input)?;
        if value.is_empty() {
            return Err(messages.invalid(&[missing_secret(input)]));
        }
        set(draft, input.field, value);
    }
    validate(draft).map_err(|errors| messages.invalid(&errors))
}

/// `● active` / `○ paused`, for tables.
pub fn status_text(active: bool) -> &'static str {
    if active { "● active" } else { "○ paused" }
}

/// `active` / `paused`, for JSON and sentences.
pub fn status_word(active: bool) -> &'static str {
    if active { "active" } else { "paused" }
}

/// The only one of `items` whose name is `wanted` ignoring case and surrounding spaces
/// (after the store found no exact id or name).
pub fn only_by_name<T>(items: Vec<T>, wanted: &str, name_of: impl Fn(&T) -> &str) -> Option<T> {
    let wanted = wanted.trim().to_lowercase();
    let mut matches = items
        .into_iter()
        .filter(|item| name_of(item).trim().to_lowercase() == wanted);
    match (matches.next(), matches.next()) {
        (Some(item), None) => Some(item),
        _ => None,
    }
}
