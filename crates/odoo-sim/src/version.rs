//! Version profiles: the differences between Odoo releases that an external client can see.

use std::fmt;
use std::str::FromStr;

/// An Odoo release the simulator can impersonate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OdooVersion {
    V16,
    V17,
    V18,
    /// Odoo Online saas~18.2: the first release without `res.partner.mobile`.
    Saas18_2,
    V19,
}

impl OdooVersion {
    pub const ALL: [OdooVersion; 5] = [
        OdooVersion::V16,
        OdooVersion::V17,
        OdooVersion::V18,
        OdooVersion::Saas18_2,
        OdooVersion::V19,
    ];

    pub fn major(self) -> u32 {
        match self {
            OdooVersion::V16 => 16,
            OdooVersion::V17 => 17,
            OdooVersion::V18 | OdooVersion::Saas18_2 => 18,
            OdooVersion::V19 => 19,
        }
    }

    /// `server_version` as `common.version` reports it.
    pub fn server_version(self) -> &'static str {
        match self {
            OdooVersion::V16 => "16.0",
            OdooVersion::V17 => "17.0",
            OdooVersion::V18 => "18.0",
            OdooVersion::Saas18_2 => "saas~18.2+e",
            OdooVersion::V19 => "19.0",
        }
    }

    /// `server_version_info` as `common.version` reports it (SaaS puts `saas~18` first).
    pub fn server_version_info(self) -> serde_json::Value {
        match self {
            OdooVersion::Saas18_2 => serde_json::json!(["saas~18", 2, 0, "final", 0, "e"]),
            other => serde_json::json!([other.major(), 0, 0, "final", 0, ""]),
        }
    }

    pub fn server_serie(self) -> &'static str {
        match self {
            OdooVersion::Saas18_2 => "saas~18.2",
            other => match other.major() {
                16 => "16.0",
                17 => "17.0",
                18 => "18.0",
                _ => "19.0",
            },
        }
    }

    /// `sale.order.state` has `done` only in 16; 17+ replaced it by the `locked` flag.
    pub fn has_sale_done_state(self) -> bool {
        self == OdooVersion::V16
    }

    /// `stock.move.quantity_done` (16) versus `quantity` + `picked` (17+).
    pub fn has_quantity_done(self) -> bool {
        self == OdooVersion::V16
    }

    /// `res.partner.mobile` was removed in saas~18.2.
    pub fn has_partner_mobile(self) -> bool {
        self <= OdooVersion::V18
    }

    /// JSON-2 (`/json/2/<model>/<method>`) and `/web/version` exist from 19 on.
    pub fn has_json2(self) -> bool {
        self >= OdooVersion::V19
    }
}

impl fmt::Display for OdooVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OdooVersion::V16 => "16",
            OdooVersion::V17 => "17",
            OdooVersion::V18 => "18",
            OdooVersion::Saas18_2 => "saas-18.2",
            OdooVersion::V19 => "19",
        })
    }
}

impl FromStr for OdooVersion {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().trim_end_matches(".0") {
            "16" => Ok(OdooVersion::V16),
            "17" => Ok(OdooVersion::V17),
            "18" => Ok(OdooVersion::V18),
            "saas-18.2" | "saas~18.2" | "18.2" => Ok(OdooVersion::Saas18_2),
            "19" => Ok(OdooVersion::V19),
            other => Err(format!(
                "unknown Odoo version {other:?}: use 16, 17, 18, saas-18.2 or 19"
            )),
        }
    }
}
