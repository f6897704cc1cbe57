//! The connection form (create and edit): one line per field of a [`ConnectionDraft`], the
//! focused one edited in place, each validation error shown under its field.
//!
//! Secrets: the API key is typed hidden (`•` per character) and, when editing, the stored
//! key is never loaded into the form: only `••••1234` is shown, and an empty field keeps it.
//! The webhook secret of a new connection is a fresh UUID4, shown and editable; when
//! editing it is masked until replaced (typing replaces it, Ctrl-G draws a new one).

use engine::connection_form::{ConnectionDraft, FieldError, new_webhook_secret};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The form's fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    OdooUrl,
    OdooDb,
    OdooUsername,
    OdooApiKey,
    WebhookUrl,
    WebhookSecret,
    StoreId,
    ClientId,
    Interval,
    MinDelay,
    Events,
    Active,
}

impl Field {
    pub const ALL: [Field; 13] = [
        Field::Name,
        Field::OdooUrl,
        Field::OdooDb,
        Field::OdooUsername,
        Field::OdooApiKey,
        Field::WebhookUrl,
        Field::WebhookSecret,
        Field::StoreId,
        Field::ClientId,
        Field::Interval,
        Field::MinDelay,
        Field::Events,
        Field::Active,
    ];

    /// The draft's field name, as [`FieldError::field`] names it.
    pub fn key(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::OdooUrl => "odoo_url",
            Field::OdooDb => "odoo_db",
            Field::OdooUsername => "odoo_username",
            Field::OdooApiKey => "odoo_api_key",
            Field::WebhookUrl => "webhook_url",
            Field::WebhookSecret => "webhook_secret",
            Field::StoreId => "store_id",
            Field::ClientId => "client_id",
            Field::Interval => "polling_interval_seconds",
            Field::MinDelay => "odoo_min_delay_ms",
            Field::Events => "events",
            Field::Active => "is_active",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::OdooUrl => "Odoo URL",
            Field::OdooDb => "Database",
            Field::OdooUsername => "User",
            Field::OdooApiKey => "API key",
            Field::WebhookUrl => "Webhook URL",
            Field::WebhookSecret => "Webhook secret",
            Field::StoreId => "Store ID",
            Field::ClientId => "Client ID",
            Field::Interval => "Interval (s)",
            Field::MinDelay => "Min delay (ms)",
            Field::Events => "Events",
            Field::Active => "Active",
        }
    }
}

/// Create a connection, or edit one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormMode {
    Create,
    Edit {
        id: String,
        /// The stored key as shown: `••••1234`.
        stored_key: String,
        /// The secret as shown while it is not replaced: `••••5e6f`.
        stored_secret: String,
    },
}

/// One half of a connection test, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub ok: bool,
    pub text: String,
}

/// A connection test's result, secrets scrubbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSummary {
    pub name: String,
    pub odoo: CheckLine,
    pub webhook: CheckLine,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TestState {
    #[default]
    None,
    Running,
    Done(TestSummary),
    /// The draft is not valid: nothing was tested.
    Invalid,
}

/// What a key did to the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormAction {
    None,
    Save,
    Test,
    Cancel,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormState {
    pub mode: FormMode,
    pub draft: ConnectionDraft,
    pub focus: usize,
    /// Cursor in the focused field, in characters.
    pub cursor: usize,
    /// From the last save or test attempt; a field's error goes when the field is edited.
    pub errors: Vec<FieldError>,
    /// Editing: the webhook secret was replaced (it is shown from then on).
    pub secret_replaced: bool,
    pub test: TestState,
    pub saving: bool,
    /// A problem not tied to a field (the store failed).
    pub problem: Option<String>,
    /// The draft as the form opened: leaving with other values asks first.
    pub initial: ConnectionDraft,
}

impl FormState {
    /// A new connection's form with the defaults (webhook URL, UUID4 secret, 60 s, …).
    pub fn create(draft: ConnectionDraft) -> FormState {
        let initial = draft.clone();
        FormState {
            mode: FormMode::Create,
            draft,
            focus: 0,
            cursor: 0,
            errors: Vec::new(),
            secret_replaced: true,
            test: TestState::None,
            saving: false,
            problem: None,
            initial,
        }
    }

    /// The form for editing a stored connection: its key stays stored and unseen.
    pub fn edit(
        draft: ConnectionDraft,
        id: String,
        stored_key: String,
        stored_secret: String,
    ) -> FormState {
        let cursor = draft.name.chars().count();
        let initial = draft.clone();
        FormState {
            mode: FormMode::Edit {
                id,
                stored_key,
                stored_secret,
            },
            draft,
            focus: 0,
            cursor,
            errors: Vec::new(),
            secret_replaced: false,
            test: TestState::None,
            saving: false,
            problem: None,
            initial,
        }
    }

    /// Something was typed that leaving would lose.
    pub fn has_unsaved_edits(&self) -> bool {
        self.draft != self.initial
    }

    pub fn is_edit(&self) -> bool {
        matches!(self.mode, FormMode::Edit { .. })
    }

    pub fn field(&self) -> Field {
        Field::ALL[self.focus.min(Field::ALL.len() - 1)]
    }

    pub fn error_of(&self, field: Field) -> Option<&FieldError> {
        self.errors.iter().find(|error| error.field == field.key())
    }

    /// The text of a field (the active toggle has none).
    pub fn value(&self, field: Field) -> &str {
        let d = &self.draft;
        match field {
            Field::Name => &d.name,
            Field::OdooUrl => &d.odoo_url,
            Field::OdooDb => &d.odoo_db,
            Field::OdooUsername => &d.odoo_username,
            Field::OdooApiKey => &d.odoo_api_key,
            Field::WebhookUrl => &d.webhook_url,
            Field::WebhookSecret => &d.webhook_secret,
            Field::StoreId => &d.store_id,
            Field::ClientId => &d.client_id,
            Field::Interval => &d.polling_interval_seconds,
            Field::MinDelay => &d.odoo_min_delay_ms,
            Field::Events => &d.events,
            Field::Active => "",
        }
    }

    fn value_mut(&mut self, field: Field) -> Option<&mut String> {
        let d = &mut self.draft;
        Some(match field {
            Field::Name => &mut d.name,
            Field::OdooUrl => &mut d.odoo_url,
            Field::OdooDb => &mut d.odoo_db,
            Field::OdooUsername => &mut d.odoo_username,
            Field::OdooApiKey => &mut d.odoo_api_key,
            Field::WebhookUrl => &mut d.webhook_url,
            Field::WebhookSecret => &mut d.webhook_secret,
            Field::StoreId => &mut d.store_id,
            Field::ClientId => &mut d.client_id,
            Field::Interval => &mut d.polling_interval_seconds,
            Field::MinDelay => &mut d.odoo_min_delay_ms,
            Field::Events => &mut d.events,
            Field::Active => return None,
        })
    }

    /// Whether the field's value is hidden as it is shown.
    pub fn masked_text(&self, field: Field) -> Option<String> {
        match (field, &self.mode) {
            (Field::OdooApiKey, _) => Some("•".repeat(self.draft.odoo_api_key.chars().count())),
            (Field::WebhookSecret, FormMode::Edit { stored_secret, .. })
                if !self.secret_replaced =>
            {
                Some(stored_secret.clone())
            }
            _ => None,
        }
    }

    fn focus_on(&mut self, index: usize) {
        self.focus = index.min(Field::ALL.len() - 1);
        self.cursor = self.value(self.field()).chars().count();
    }

    fn edited(&mut self, field: Field) {
        self.errors.retain(|error| error.field != field.key());
        if !matches!(self.test, TestState::Running) {
            self.test = TestState::None;
        }
    }

    /// Applies a key; tells the app what it asks for.
    pub fn handle_key(&mut self, key: KeyEvent) -> FormAction {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let field = self.field();
        match key.code {
            KeyCode::Esc => return FormAction::Cancel,
            KeyCode::F(1) => return FormAction::Help,
            KeyCode::Char('s') if ctrl => return FormAction::Save,
            KeyCode::Char('t') if ctrl => return FormAction::Test,
            KeyCode::Char('g') if ctrl && field == Field::WebhookSecret => {
                self.draft.webhook_secret = new_webhook_secret();
                self.secret_replaced = true;
                self.cursor = self.draft.webhook_secret.chars().count();
                self.edited(field);
            }
            KeyCode::Char('u') if ctrl => {
                if let Some(value) = self.value_mut(field) {
                    value.clear();
                    self.cursor = 0;
                    if field == Field::WebhookSecret {
                        self.secret_replaced = true;
                    }
                    self.edited(field);
                }
            }
            KeyCode::Tab | KeyCode::Down => self.focus_on((self.focus + 1) % Field::ALL.len()),
            KeyCode::BackTab | KeyCode::Up => {
                self.focus_on((self.focus + Field::ALL.len() - 1) % Field::ALL.len());
            }
            KeyCode::Enter => {
                if self.focus + 1 == Field::ALL.len() {
                    return FormAction::Save;
                }
                self.focus_on(self.focus + 1);
            }
            KeyCode::Char(' ') if field == Field::Active => {
                self.draft.is_active = !self.draft.is_active;
                self.edited(field);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => {
                self.cursor = (self.cursor + 1).min(self.value(field).chars().count());
            }
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.value(field).chars().count(),
            KeyCode::Backspace => {
                self.replace_masked_secret(field);
                let cursor = self.cursor;
                if let Some(value) = self.value_mut(field)
                    && cursor > 0
                {
                    remove_char(value, cursor - 1);
                    self.cursor = cursor - 1;
                    self.edited(field);
                }
            }
            KeyCode::Delete => {
                self.replace_masked_secret(field);
                let cursor = self.cursor;
                if let Some(value) = self.value_mut(field)
                    && cursor < value.chars().count()
                {
                    remove_char(value, cursor);
                    self.edited(field);
                }
            }
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                self.replace_masked_secret(field);
                let cursor = self.cursor;
                if let Some(value) = self.value_mut(field) {
                    insert_char(value, cursor, c);
                    self.cursor = cursor + 1;
                    self.edited(field);
                }
            }
            _ => {}
        }
        FormAction::None
    }

    /// Editing a masked stored secret starts a new one from scratch.
    fn replace_masked_secret(&mut self, field: Field) {
        if field == Field::WebhookSecret && !self.secret_replaced {
            self.draft.webhook_secret.clear();
            self.secret_replaced = true;
            self.cursor = 0;
        }
    }
}

fn byte_index(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

fn insert_char(text: &mut String, at: usize, c: char) {
    let index = byte_index(text, at);
    text.insert(index, c);
}

fn remove_char(text: &mut String, at: usize) {
    let index = byte_index(text, at);
    if index < text.len() {
        text.remove(index);
    }
}
