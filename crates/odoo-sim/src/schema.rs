//! Model and field definitions: what `fields_get` answers and what the ORM validates against.

use crate::version::OdooVersion;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    Char,
    Text,
    /// `fields.Html`: text as HTML, sanitized on write ([`crate::html::sanitize`]).
    Html,
    Integer,
    Float,
    Monetary,
    Boolean,
    Date,
    Datetime,
    Selection(Vec<(String, String)>),
    Many2one {
        comodel: String,
    },
    One2many {
        comodel: String,
        inverse: String,
    },
    Many2many {
        comodel: String,
    },
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Char => "char",
            FieldType::Text => "text",
            FieldType::Html => "html",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Monetary => "monetary",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Selection(_) => "selection",
            FieldType::Many2one { .. } => "many2one",
            FieldType::One2many { .. } => "one2many",
            FieldType::Many2many { .. } => "many2many",
        }
    }

    pub fn comodel(&self) -> Option<&str> {
        match self {
            FieldType::Many2one { comodel }
            | FieldType::One2many { comodel, .. }
            | FieldType::Many2many { comodel } => Some(comodel),
            _ => None,
        }
    }

    pub fn is_x2many(&self) -> bool {
        matches!(
            self,
            FieldType::One2many { .. } | FieldType::Many2many { .. }
        )
    }

    pub fn is_textual(&self) -> bool {
        matches!(self, FieldType::Char | FieldType::Text | FieldType::Html)
    }
}

/// How a non-stored field gets its value when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    DisplayName,
    PartnerSaleOrderCount,
    OrderAmountUntaxed,
    OrderAmountTotal,
    OrderDeliveryStatus,
    LineSubtotal,
    PickingTypeCode,
    /// Always 0: the simulated company has no taxes configured.
    Zero,
    /// A related field: the value of `path` (`order_id.state`) read through many2ones.
    Related(&'static str),
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub string: String,
    pub ftype: FieldType,
    pub required: bool,
    pub readonly: bool,
    pub compute: Option<Compute>,
    /// A computed field Odoo stores (`store=True`): recomputing it is a write, so it stamps
    /// the record's `write_date` (Odoo's `_write_multi` sets the log fields "not for
    /// computed fields" only because `write()` already did it for the others).
    pub stored_compute: bool,
}

impl FieldDef {
    pub fn new(name: &str, string: &str, ftype: FieldType) -> FieldDef {
        FieldDef {
            name: name.to_owned(),
            string: string.to_owned(),
            ftype,
            required: false,
            readonly: false,
            compute: None,
            stored_compute: false,
        }
    }

    pub fn required(mut self) -> FieldDef {
        self.required = true;
        self
    }

    pub fn readonly(mut self) -> FieldDef {
        self.readonly = true;
        self
    }

    pub fn computed(mut self, compute: Compute) -> FieldDef {
        self.compute = Some(compute);
        self.readonly = true;
        self
    }

    /// Odoo stores this computed field: see [`FieldDef::stored_compute`].
    pub fn stored(mut self) -> FieldDef {
        self.stored_compute = true;
        self
    }

    pub fn is_stored(&self) -> bool {
        self.compute.is_none() && !matches!(self.ftype, FieldType::One2many { .. })
    }
}

/// A model: its fields, default order (`_order`) and record name (`_rec_name`).
#[derive(Debug, Clone)]
pub struct ModelDef {
    pub name: String,
    pub description: String,
    pub order: String,
    pub rec_name: String,
    fields: Vec<FieldDef>,
    index: HashMap<String, usize>,
}

impl ModelDef {
    /// A model with Odoo's magic fields (`id`, `display_name`, `create_date`, `create_uid`,
    /// `write_date`, `write_uid`) already declared.
    pub fn new(name: &str, description: &str) -> ModelDef {
        let mut model = ModelDef {
            name: name.to_owned(),
            description: description.to_owned(),
            order: "id".to_owned(),
            rec_name: "name".to_owned(),
            fields: Vec::new(),
            index: HashMap::new(),
        };
        let users = || FieldType::Many2one {
            comodel: "res.users".into(),
        };
        model = model
            .field(FieldDef::new("id", "ID", FieldType::Integer).readonly())
            .field(
                FieldDef::new("display_name", "Display Name", FieldType::Char)
                    .computed(Compute::DisplayName),
            )
            .field(FieldDef::new("create_date", "Created on", FieldType::Datetime).readonly())
            .field(FieldDef::new("create_uid", "Created by", users()).readonly())
            .field(FieldDef::new("write_date", "Last Updated on", FieldType::Datetime).readonly())
            .field(FieldDef::new("write_uid", "Last Updated by", users()).readonly());
        model
    }

    pub fn order(mut self, order: &str) -> ModelDef {
        self.order = order.to_owned();
        self
    }

    pub fn rec_name(mut self, field: &str) -> ModelDef {
        self.rec_name = field.to_owned();
        self
    }

    /// Declares a field; a field of the same name replaces the earlier one.
    pub fn field(mut self, field: FieldDef) -> ModelDef {
        if let Some(&position) = self.index.get(&field.name) {
            self.fields[position] = field;
        } else {
            self.index.insert(field.name.clone(), self.fields.len());
            self.fields.push(field);
        }
        self
    }

    pub fn fields(&self) -> &[FieldDef] {
        &self.fields
    }

    pub fn get(&self, name: &str) -> Option<&FieldDef> {
        self.index.get(name).map(|&position| &self.fields[position])
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn has_active(&self) -> bool {
        self.index.contains_key("active")
    }
}

fn selection(pairs: &[(&str, &str)]) -> FieldType {
    FieldType::Selection(
        pairs
            .iter()
            .map(|(key, label)| ((*key).to_owned(), (*label).to_owned()))
            .collect(),
    )
}

fn m2o(comodel: &str) -> FieldType {
    FieldType::Many2one {
        comodel: comodel.to_owned(),
    }
}

fn o2m(comodel: &str, inverse: &str) -> FieldType {
    FieldType::One2many {
        comodel: comodel.to_owned(),
        inverse: inverse.to_owned(),
    }
}

fn m2m(comodel: &str) -> FieldType {
    FieldType::Many2many {
        comodel: comodel.to_owned(),
    }
}

use FieldType::{Boolean, Char, Date, Datetime, Float, Html, Integer, Monetary, Text};

/// The standard models, as the given release defines the fields an integration reads.
pub fn standard_models(version: OdooVersion) -> Vec<ModelDef> {
    let f = FieldDef::new;
    let mut partner = ModelDef::new("res.partner", "Contact")
        .order("complete_name ASC, id DESC")
        .field(f("name", "Name", Char))
        .field(f("complete_name", "Complete Name", Char).computed(Compute::DisplayName))
        .field(f("active", "Active", Boolean))
        .field(f("is_company", "Is a Company", Boolean))
        .field(f("parent_id", "Related Company", m2o("res.partner")))
        .field(f("child_ids", "Contact", o2m("res.partner", "parent_id")))
        .field(f(
            "type",
            "Address Type",
            selection(&[
                ("contact", "Contact"),
                ("invoice", "Invoice Address"),
                ("delivery", "Delivery Address"),
                ("other", "Other Address"),
            ]),
        ))
        .field(f("email", "Email", Char))
        .field(f("phone", "Phone", Char))
        .field(f("street", "Street", Char))
        .field(f("street2", "Street2", Char))
        .field(f("city", "City", Char))
        .field(f("zip", "Zip", Char))
        .field(f("state_id", "State", m2o("res.country.state")))
        .field(f("country_id", "Country", m2o("res.country")))
        .field(f("vat", "Tax ID", Char))
        .field(f("ref", "Reference", Char))
        .field(f("lang", "Language", Char))
        .field(f("customer_rank", "Customer Rank", Integer))
        .field(f("supplier_rank", "Supplier Rank", Integer))
        .field(
            f("sale_order_count", "Sale Order Count", Integer)
                .computed(Compute::PartnerSaleOrderCount),
        );
    if version.has_partner_mobile() {
        partner = partner.field(f("mobile", "Mobile", Char));
    }

    let company = ModelDef::new("res.company", "Companies")
        .order("sequence, name")
        .field(f("name", "Company Name", Char).required())
        .field(f("sequence", "Sequence", Integer))
        .field(f("partner_id", "Partner", m2o("res.partner")))
        .field(f("currency_id", "Currency", m2o("res.currency")));
    let currency = ModelDef::new("res.currency", "Currency")
        .order("active desc, name")
        .field(f("name", "Currency", Char).required())
        .field(f("symbol", "Symbol", Char))
        .field(f("active", "Active", Boolean));
    let pricelist = ModelDef::new("product.pricelist", "Pricelist")
        .order("sequence, id")
        .field(f("name", "Pricelist Name", Char).required())
        .field(f("sequence", "Sequence", Integer))
        .field(f("active", "Active", Boolean))
        .field(f("currency_id", "Currency", m2o("res.currency")));
    let category = ModelDef::new("product.category", "Product Category")
        .order("complete_name")
        .rec_name("complete_name")
        .field(f("name", "Name", Char).required())
        .field(f("complete_name", "Complete Name", Char).computed(Compute::DisplayName))
        .field(f("parent_id", "Parent Category", m2o("product.category")));
    let uom = ModelDef::new("uom.uom", "Product Unit of Measure")
        .order("factor DESC, id")
        .field(f("name", "Unit of Measure", Char).required())
        .field(f("factor", "Ratio", Float))
        .field(f("active", "Active", Boolean));
    let stage = ModelDef::new("crm.stage", "CRM Stages")
        .order("sequence, name, id")
        .field(f("name", "Stage Name", Char).required())
        .field(f("sequence", "Sequence", Integer))
        .field(f("is_won", "Is Won Stage?", Boolean));

    let country = ModelDef::new("res.country", "Country")
        .order("name")
        .field(f("name", "Country Name", Char).required())
        .field(f("code", "Country Code", Char))
        .field(f("phone_code", "Country Calling Code", Integer));
    let state = ModelDef::new("res.country.state", "Country state")
        .order("code")
        .field(f("name", "State Name", Char).required())
        .field(f("code", "State Code", Char).required())
        .field(f("country_id", "Country", m2o("res.country")).required());
    let users = ModelDef::new("res.users", "User")
        .order("name, login")
        .field(f("name", "Name", Char))
        .field(f("login", "Login", Char).required())
        .field(f("active", "Active", Boolean))
        .field(f("partner_id", "Related Partner", m2o("res.partner")))
        .field(f("email", "Email", Char).computed(Compute::Related("partner_id.email")))
        .field(f("company_id", "Company", m2o("res.company")))
        .field(f("share", "Share User", Boolean));

    let template = ModelDef::new("product.template", "Product")
        .order("priority desc, name")
        .field(f("name", "Name", Char).required())
        .field(f(
            "priority",
            "Favorite",
            selection(&[("0", "Normal"), ("1", "Favorite")]),
        ))
        .field(f("active", "Active", Boolean))
        .field(f("default_code", "Internal Reference", Char))
        .field(f("list_price", "Sales Price", Float))
        .field(f("standard_price", "Cost", Float))
        .field(f("categ_id", "Product Category", m2o("product.category")))
        .field(f("uom_id", "Unit", m2o("uom.uom")))
        .field(f("sale_ok", "Can be Sold", Boolean))
        .field(f(
            "type",
            "Product Type",
            selection(&[
                ("consu", "Goods"),
                ("service", "Service"),
                ("combo", "Combo"),
            ]),
        ))
        .field(f(
            "product_variant_ids",
            "Products",
            o2m("product.product", "product_tmpl_id"),
        ));
    let product = ModelDef::new("product.product", "Product Variant")
        .order("default_code, name, id")
        .field(
            f(
                "product_tmpl_id",
                "Product Template",
                m2o("product.template"),
            )
            .required(),
        )
        .field(f("name", "Name", Char))
        .field(f("active", "Active", Boolean))
        .field(f("default_code", "Internal Reference", Char))
        .field(f("barcode", "Barcode", Char))
        .field(f("lst_price", "Sales Price", Float))
        // Stock is not simulated: free quantity is whatever a test writes (any warehouse).
        .field(f("free_qty", "Free To Use Quantity", Float).readonly())
        .field(f(
            "product_template_attribute_value_ids",
            "Attribute Values",
            m2m("product.template.attribute.value"),
        ));
    let attribute = ModelDef::new("product.attribute", "Product Attribute")
        .order("sequence, id")
        .field(f("name", "Attribute", Char).required())
        .field(f("sequence", "Sequence", Integer))
        .field(f(
            "value_ids",
            "Values",
            o2m("product.attribute.value", "attribute_id"),
        ));
    let attribute_value = ModelDef::new("product.attribute.value", "Attribute Value")
        .order("attribute_id, sequence, id")
        .field(f("name", "Value", Char).required())
        .field(f("sequence", "Sequence", Integer))
        .field(f("attribute_id", "Attribute", m2o("product.attribute")).required());
    let ptav = ModelDef::new(
        "product.template.attribute.value",
        "Product Template Attribute Value",
    )
    .order("attribute_line_id, product_attribute_value_id, id")
    .field(f("name", "Value", Char))
    .field(f("attribute_line_id", "Attribute Line", Integer))
    .field(
        f(
            "product_attribute_value_id",
            "Attribute Value",
            m2o("product.attribute.value"),
        )
        .required(),
    )
    .field(f("attribute_id", "Attribute", m2o("product.attribute")))
    .field(f(
        "product_tmpl_id",
        "Product Template",
        m2o("product.template"),
    ))
    .field(f("price_extra", "Value Price Extra", Float));

    let mut order_states = vec![
        ("draft", "Quotation"),
        ("sent", "Quotation Sent"),
        ("sale", "Sales Order"),
    ];
    if version.has_sale_done_state() {
        order_states.push(("done", "Locked"));
    }
    order_states.push(("cancel", "Cancelled"));
    let mut order = ModelDef::new("sale.order", "Sales Order")
        .order("date_order desc, id desc")
        .field(f("name", "Order Reference", Char).required())
        .field(f("state", "Status", selection(&order_states)).readonly())
        .field(f("date_order", "Order Date", Datetime).required())
        .field(f("partner_id", "Customer", m2o("res.partner")).required())
        .field(f(
            "partner_invoice_id",
            "Invoice Address",
            m2o("res.partner"),
        ))
        .field(f(
            "partner_shipping_id",
            "Delivery Address",
            m2o("res.partner"),
        ))
        .field(f("user_id", "Salesperson", m2o("res.users")))
        .field(f("company_id", "Company", m2o("res.company")))
        .field(f("currency_id", "Currency", m2o("res.currency")))
        .field(f("pricelist_id", "Pricelist", m2o("product.pricelist")))
        .field(f(
            "invoice_status",
            "Invoice Status",
            selection(&[
                ("upselling", "Upselling Opportunity"),
                ("invoiced", "Fully Invoiced"),
                ("to invoice", "To Invoice"),
                ("no", "Nothing to Invoice"),
            ]),
        ))
        .field(f("client_order_ref", "Customer Reference", Char))
        .field(f("origin", "Source Document", Char))
        // HTML on every version the simulator serves (16+), as on Odoo: sanitized on write.
        .field(f("note", "Terms and conditions", Html))
        .field(f("currency_code", "Currency", Char).readonly())
        .field(f(
            "order_line",
            "Order Lines",
            o2m("sale.order.line", "order_id"),
        ))
        .field(f(
            "picking_ids",
            "Transfers",
            o2m("stock.picking", "sale_id"),
        ))
        .field(
            f("amount_untaxed", "Untaxed Amount", Monetary).computed(Compute::OrderAmountUntaxed),
        )
        .field(f("amount_tax", "Taxes", Monetary).computed(Compute::Zero))
        .field(f("amount_total", "Total", Monetary).computed(Compute::OrderAmountTotal))
        .field(
            f(
                "delivery_status",
                "Delivery Status",
                selection(&[
                    ("pending", "Not Delivered"),
                    ("started", "Started"),
                    ("partial", "Partially Delivered"),
                    ("full", "Fully Delivered"),
                ]),
            )
            .computed(Compute::OrderDeliveryStatus),
        );
    if !version.has_sale_done_state() {
        order = order.field(f("locked", "Locked", Boolean));
    }
    let line = ModelDef::new("sale.order.line", "Sales Order Line")
        .order("order_id, sequence, id")
        .field(f("order_id", "Order Reference", m2o("sale.order")).required())
        .field(f("sequence", "Sequence", Integer))
        .field(f("product_id", "Product", m2o("product.product")))
        .field(
            f(
                "product_template_id",
                "Product Template",
                m2o("product.template"),
            )
            .computed(Compute::Related("product_id.product_tmpl_id")),
        )
        .field(f("name", "Description", Text))
        .field(f("product_uom_qty", "Quantity", Float))
        .field(f("product_uom", "Unit of Measure", m2o("uom.uom")))
        .field(f("price_unit", "Unit Price", Float))
        .field(f("discount", "Discount (%)", Float))
        .field(f("price_subtotal", "Subtotal", Monetary).computed(Compute::LineSubtotal))
        .field(f("price_total", "Total", Monetary).computed(Compute::LineSubtotal))
        .field(
            f("currency_id", "Currency", m2o("res.currency"))
                .computed(Compute::Related("order_id.currency_id"))
                .stored(),
        )
        .field(
            f("state", "Order Status", selection(&order_states))
                .computed(Compute::Related("order_id.state"))
                .stored(),
        )
        .field(f("qty_delivered", "Delivery Quantity", Float))
        .field(f("qty_invoiced", "Invoiced Quantity", Float))
        .field(f(
            "display_type",
            "Display Type",
            selection(&[("line_section", "Section"), ("line_note", "Note")]),
        ));

    let picking = ModelDef::new("stock.picking", "Transfer")
        .order("priority desc, scheduled_date asc, id desc")
        .field(f("name", "Reference", Char))
        .field(f(
            "priority",
            "Priority",
            selection(&[("0", "Normal"), ("1", "Urgent")]),
        ))
        .field(
            f(
                "state",
                "Status",
                selection(&[
                    ("draft", "Draft"),
                    ("waiting", "Waiting Another Operation"),
                    ("confirmed", "Waiting"),
                    ("assigned", "Ready"),
                    ("done", "Done"),
                    ("cancel", "Cancelled"),
                ]),
            )
            .readonly(),
        )
        .field(f("partner_id", "Contact", m2o("res.partner")))
        .field(f("origin", "Source Document", Char))
        .field(f("sale_id", "Sales Order", m2o("sale.order")))
        .field(f(
            "picking_type_code",
            "Type of Operation",
            selection(&[
                ("incoming", "Receipt"),
                ("outgoing", "Delivery"),
                ("internal", "Internal Transfer"),
            ]),
        ))
        .field(f(
            "move_ids",
            "Stock Moves",
            o2m("stock.move", "picking_id"),
        ))
        .field(f("scheduled_date", "Scheduled Date", Datetime))
        .field(f("date_done", "Date of Transfer", Datetime).readonly())
        .field(f("return_id", "Return of", m2o("stock.picking")))
        .field(f("carrier_tracking_ref", "Tracking Reference", Char));
    let mut moves = ModelDef::new("stock.move", "Stock Move")
        .order("sequence, id")
        .field(f("name", "Description", Char))
        .field(f("sequence", "Sequence", Integer))
        .field(f("picking_id", "Transfer", m2o("stock.picking")))
        .field(f("product_id", "Product", m2o("product.product")).required())
        .field(f("product_uom_qty", "Demand", Float))
        .field(f("sale_line_id", "Sale Line", m2o("sale.order.line")))
        .field(
            f(
                "state",
                "Status",
                selection(&[
                    ("draft", "New"),
                    ("waiting", "Waiting Another Move"),
                    ("confirmed", "Waiting Availability"),
                    ("partially_available", "Partially Available"),
                    ("assigned", "Available"),
                    ("done", "Done"),
                    ("cancel", "Cancelled"),
                ]),
            )
            .readonly(),
        );
    moves = if version.has_quantity_done() {
        moves
            .field(f("reserved_availability", "Quantity Reserved", Float).readonly())
            .field(f("quantity_done", "Quantity Done", Float))
    } else {
        moves
            .field(f("quantity", "Quantity", Float))
            .field(f("picked", "Picked", Boolean))
    };
    let return_wizard = ModelDef::new("stock.return.picking", "Return Picking")
        .field(f("picking_id", "Picking", m2o("stock.picking")))
        .field(f(
            "product_return_moves",
            "Moves",
            o2m("stock.return.picking.line", "wizard_id"),
        ));
    let return_line = ModelDef::new("stock.return.picking.line", "Return Picking Line")
        .rec_name("product_id")
        .field(f("wizard_id", "Wizard", m2o("stock.return.picking")))
        .field(f("product_id", "Product", m2o("product.product")))
        .field(f("move_id", "Move", m2o("stock.move")))
        .field(f("quantity", "Quantity", Float))
        .field(f("move_quantity", "Move Quantity", Float).readonly());

    let invoice = ModelDef::new("account.move", "Journal Entry")
        .order("date desc, name desc, id desc")
        .field(f("name", "Number", Char))
        .field(f("date", "Date", Date))
        .field(f("invoice_date", "Invoice/Bill Date", Date))
        .field(f("invoice_date_due", "Due Date", Date))
        .field(f("ref", "Reference", Char))
        .field(f("partner_id", "Partner", m2o("res.partner")))
        .field(f("company_id", "Company", m2o("res.company")))
        .field(f("currency_id", "Currency", m2o("res.currency")))
        .field(f("amount_untaxed", "Untaxed Amount", Monetary))
        .field(f("amount_tax", "Tax", Monetary))
        .field(f("amount_residual", "Amount Due", Monetary))
        .field(f(
            "move_type",
            "Type",
            selection(&[
                ("entry", "Journal Entry"),
                ("out_invoice", "Customer Invoice"),
                ("out_refund", "Customer Credit Note"),
                ("in_invoice", "Vendor Bill"),
                ("in_refund", "Vendor Credit Note"),
            ]),
        ))
        .field(f(
            "state",
            "Status",
            selection(&[
                ("draft", "Draft"),
                ("posted", "Posted"),
                ("cancel", "Cancelled"),
            ]),
        ))
        .field(f("invoice_origin", "Origin", Char))
        .field(f("amount_total", "Total", Monetary))
        .field(f(
            "payment_state",
            "Payment Status",
            selection(&[
                ("not_paid", "Not Paid"),
                ("partial", "Partially Paid"),
                ("paid", "Paid"),
            ]),
        ));
    let lead = ModelDef::new("crm.lead", "Lead/Opportunity")
        .order("priority desc, id desc")
        .field(f("name", "Opportunity", Char).required())
        .field(f("active", "Active", Boolean))
        .field(f(
            "type",
            "Type",
            selection(&[("lead", "Lead"), ("opportunity", "Opportunity")]),
        ))
        .field(f(
            "priority",
            "Priority",
            selection(&[
                ("0", "Low"),
                ("1", "Medium"),
                ("2", "High"),
                ("3", "Very High"),
            ]),
        ))
        .field(f("partner_id", "Customer", m2o("res.partner")))
        .field(f("stage_id", "Stage", m2o("crm.stage")))
        .field(f("user_id", "Salesperson", m2o("res.users")))
        .field(f("date_open", "Assignment Date", Datetime))
        .field(f("date_closed", "Closed Date", Datetime))
        .field(f("email_from", "Email", Char))
        .field(f("phone", "Phone", Char))
        .field(f("expected_revenue", "Expected Revenue", Monetary))
        .field(f("probability", "Probability", Float))
        .field(f("description", "Notes", Html))
        .field(f("date_deadline", "Expected Closing", Date));

    vec![
        company,
        currency,
        pricelist,
        category,
        uom,
        stage,
        partner,
        country,
        state,
        users,
        template,
        product,
        attribute,
        attribute_value,
        ptav,
        order,
        line,
        picking,
        moves,
        return_wizard,
        return_line,
        invoice,
        lead,
    ]
}
