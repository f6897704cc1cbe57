use odoo_rpc::FieldError;

/// Why a page could not be fetched, or one order's payload could not be built.
///
/// [`fetch`](super::fetch) fails only on Odoo's own errors (network, access, a malformed
/// answer) and on related rows without an id. Everything specific to one order — a related
/// record missing from Odoo's answer, a field of an unexpected type — is reported by
/// [`build`](super::build) for that order alone, so one bad order never holds back the others
/// of its page.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error(transparent)]
    Odoo(#[from] odoo_rpc::Error),

    /// A record the order refers to is not in Odoo's answer: deleted (or made unreadable)
    /// between reading the order and reading its related data. The next poll reads the order
    /// again, as it changed.
    #[error(
        "sale.order {order}: {model} record {id} is missing from Odoo's answer (deleted or made unreadable since the order was read)"
    )]
    MissingRecord {
        order: i64,
        model: &'static str,
        id: i64,
    },

    /// A field is absent from a record (not read) or holds an unexpected type.
    #[error("sale.order {order}: {model} record {id}: {source}")]
    BadField {
        order: i64,
        model: &'static str,
        id: i64,
        #[source]
        source: FieldError,
    },

    /// A field the payload requires is empty (`false`).
    #[error(
        "sale.order {order}: {model} record {id}: `{field}` is empty but the payload requires it"
    )]
    EmptyField {
        order: i64,
        model: &'static str,
        id: i64,
        field: &'static str,
    },

    /// An amount that cannot be sent as integer cents (not finite, or beyond 2^53 cents).
    #[error(
        "sale.order {order}: {model} record {id}: `{field}` = {value} cannot be expressed in integer cents"
    )]
    BadAmount {
        order: i64,
        model: &'static str,
        id: i64,
        field: &'static str,
        value: f64,
    },

    /// A row in Odoo's answer has no usable id: the answer is not what Odoo sends.
    #[error("Odoo's answer for {model} holds a row without a valid id: {source}")]
    BadAnswer {
        model: &'static str,
        #[source]
        source: FieldError,
    },
}
