//! A change feed over one Odoo model: every record whose cursor field (`write_date`) moved,
//! page by page, with a checkpoint after each page.
//!
//! # Why not `(cursor > v) OR (cursor = v AND id > last_id)`
//! Odoo stores `write_date` with microseconds but returns it truncated to whole seconds, and
//! compares domains at full precision. With the value `v` read back, `cursor = v` matches
//! nothing and `cursor > v` matches every record of second `v` again. And one `create` of a
//! thousand records stamps them all alike. So the textbook keyset either loops forever on a
//! full second or skips records.
//!
//! # What this feed does
//! It walks time in whole seconds, which it can express exactly:
//! - **after a second** `S`: `cursor >= S+1s`, ordered `cursor asc, id asc`. If the page is not
//!   full, the feed has caught up. If it is full, it ends inside some second `T` whose records
//!   are ordered by microseconds, not ids, so the feed cannot tell which ids of `T` are still
//!   to come: it re-reads `T` completely by id.
//! - **inside a second** `T`: `T <= cursor < T+1s AND id > last_id`, ordered by `id`. Ids are
//!   unique, so this always progresses, whatever the number of records stamped alike.
//!
//! A checkpoint is `(second, last_id)`: inside `second` after `last_id`, or the whole second
//! done when `last_id` is [`Checkpoint::SECOND_DONE`]. Crashing after a page repeats at most
//! that page; records of one second may be delivered twice, never skipped.

use jiff::{SignedDuration, Timestamp};
use odoo_rpc::value::format_datetime;
use odoo_rpc::{Context, Domain, OdooClient, Record, SearchReadOptions, field};
use serde::{Deserialize, Serialize};

/// Where a feed stands: inside `second` after `last_id`, or past `second` entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// A whole second (UTC).
    pub second: Timestamp,
    pub last_id: i64,
}

impl Checkpoint {
    /// `last_id` value meaning "every record of `second` has been read".
    pub const SECOND_DONE: i64 = i64::MAX;

    pub fn is_second_done(&self) -> bool {
        self.last_id == Self::SECOND_DONE
    }

    /// The checkpoint a new run starts from: `overlap` earlier, re-reading that window whole,
    /// so rows committed late with an earlier `write_date` (a long transaction's start time)
    /// are not missed.
    pub fn rewound(self, overlap: SignedDuration) -> Checkpoint {
        if overlap.is_zero() {
            return self;
        }
        let second = self.second.checked_sub(overlap).unwrap_or(self.second);
        Checkpoint {
            second: truncate(second),
            last_id: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Odoo(#[from] odoo_rpc::Error),
    #[error(
        "{model} record {id} has no readable `{field}` ({detail}); the feed cannot place it in time"
    )]
    BadCursor {
        model: String,
        id: i64,
        field: String,
        detail: String,
    },
}

/// What to follow.
#[derive(Debug, Clone)]
pub struct FeedSpec {
    pub model: String,
    /// Fields to read; the cursor field and `id` are added if missing. Empty: every field.
    pub fields: Vec<String>,
    /// The user's filter, AND-ed with the feed's own conditions.
    pub domain: Domain,
    /// A datetime field that every write moves forward (`write_date`).
    pub cursor_field: String,
    pub page_size: usize,
    pub context: Context,
}

impl FeedSpec {
    pub fn new(model: impl Into<String>) -> FeedSpec {
        FeedSpec {
            model: model.into(),
            fields: Vec::new(),
            domain: Domain::all(),
            cursor_field: "write_date".into(),
            page_size: 500,
            // A mirror must see archived records too; a feed wanting only active ones says so.
            context: Context::new().active_test(false),
        }
    }
}

/// One page of changed records and the checkpoint to store with them, in one transaction.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<Record>,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// From the beginning of time.
    Start,
    InSecond {
        second: Timestamp,
        after_id: i64,
    },
    After {
        second: Timestamp,
    },
    CaughtUp,
}

/// Reads changes page by page; see the module documentation for the algorithm.
#[derive(Debug)]
pub struct ChangeFeed<'c> {
    client: &'c OdooClient,
    spec: FeedSpec,
    fields: Vec<String>,
    phase: Phase,
}

pub fn truncate(timestamp: Timestamp) -> Timestamp {
    Timestamp::from_second(timestamp.as_second()).unwrap_or(timestamp)
}

fn next_second(second: Timestamp) -> Timestamp {
    second
        .checked_add(SignedDuration::from_secs(1))
        .unwrap_or(second)
}

impl<'c> ChangeFeed<'c> {
    /// A feed starting after `from`, or from the beginning (a full backfill) when `None`.
    pub fn new(client: &'c OdooClient, spec: FeedSpec, from: Option<Checkpoint>) -> ChangeFeed<'c> {
        let mut fields = spec.fields.clone();
        // An empty list asks Odoo for every field, the cursor and id included.
        if !fields.is_empty() {
            for required in ["id", spec.cursor_field.as_str()] {
                if !fields.iter().any(|f| f == required) {
                    fields.push(required.to_owned());
                }
            }
        }
        let phase = match from {
            None => Phase::Start,
            Some(checkpoint) if checkpoint.is_second_done() => Phase::After {
                second: checkpoint.second,
            },
            Some(checkpoint) => Phase::InSecond {
                second: checkpoint.second,
                after_id: checkpoint.last_id,
            },
        };
        ChangeFeed {
            client,
            spec,
            fields,
            phase,
        }
    }

    /// The next page, or `None` once the feed has caught up with Odoo.
    pub async fn next_page(&mut self) -> Result<Option<Page>, FeedError> {
        let cursor = self.spec.cursor_field.clone();
        let page_size = self.spec.page_size.max(1);
        loop {
            match self.phase {
                Phase::CaughtUp => return Ok(None),
                Phase::InSecond { second, after_id } => {
                    let domain = self.spec.domain.clone()
                        & field(cursor.as_str()).gte(format_datetime(second))
                        & field(cursor.as_str()).lt(format_datetime(next_second(second)))
                        & field("id").gt(after_id);
                    let records = self.read(domain, "id asc", page_size).await?;
                    let Some(last) = records.last() else {
                        self.phase = Phase::After { second };
                        continue;
                    };
                    let last_id = last.id().map_err(|e| self.bad_cursor(0, e.to_string()))?;
                    let checkpoint = if records.len() < page_size {
                        self.phase = Phase::After { second };
                        Checkpoint {
                            second,
                            last_id: Checkpoint::SECOND_DONE,
                        }
                    } else {
                        self.phase = Phase::InSecond {
                            second,
                            after_id: last_id,
                        };
                        Checkpoint { second, last_id }
                    };
                    return Ok(Some(Page {
                        records,
                        checkpoint,
                    }));
                }
                Phase::Start | Phase::After { .. } => {
                    let mut domain = self.spec.domain.clone() & field(cursor.as_str()).is_set();
                    if let Phase::After { second } = self.phase {
                        domain = domain
                            & field(cursor.as_str()).gte(format_datetime(next_second(second)));
                    }
                    let order = format!("{cursor} asc, id asc");
                    let records = self.read(domain, &order, page_size).await?;
                    let Some(last) = records.last() else {
                        self.phase = Phase::CaughtUp;
                        return Ok(None);
                    };
                    let last_second = self.second_of(last)?;
                    let checkpoint = if records.len() < page_size {
                        self.phase = Phase::CaughtUp;
                        Checkpoint {
                            second: last_second,
                            last_id: Checkpoint::SECOND_DONE,
                        }
                    } else {
                        // The page may end inside `last_second`: read that second again by id.
                        self.phase = Phase::InSecond {
                            second: last_second,
                            after_id: 0,
                        };
                        Checkpoint {
                            second: last_second,
                            last_id: 0,
                        }
                    };
                    return Ok(Some(Page {
                        records,
                        checkpoint,
                    }));
                }
            }
        }
    }

    async fn read(
        &self,
        domain: Domain,
        order: &str,
        limit: usize,
    ) -> Result<Vec<Record>, FeedError> {
        let options = SearchReadOptions::new(domain)
            .fields(self.fields.iter().map(String::as_str))
            .order(order)
            .limit(limit as u64)
            .context(self.spec.context.clone());
        Ok(self.client.search_read(&self.spec.model, &options).await?)
    }

    fn second_of(&self, record: &Record) -> Result<Timestamp, FeedError> {
        let id = record.id().unwrap_or_default();
        match record.datetime(&self.spec.cursor_field) {
            Ok(Some(timestamp)) => Ok(truncate(timestamp)),
            Ok(None) => Err(self.bad_cursor(id, "empty".into())),
            Err(error) => Err(self.bad_cursor(id, error.to_string())),
        }
    }

    fn bad_cursor(&self, id: i64, detail: String) -> FeedError {
        FeedError::BadCursor {
            model: self.spec.model.clone(),
            id,
            field: self.spec.cursor_field.clone(),
            detail,
        }
    }
}

/// Every id of a model, archived ones included, paged by id: what deletion reconciliation
/// compares the mirror against. Ids only, so it stays cheap on large models.
pub async fn all_ids(
    client: &OdooClient,
    model: &str,
    domain: &Domain,
    page_size: usize,
) -> Result<Vec<i64>, FeedError> {
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let options = SearchReadOptions::new(domain.clone() & field("id").gt(after))
            .order("id asc")
            .limit(page_size.max(1) as u64)
            .context(Context::new().active_test(false));
        let page = client.search(model, &options).await?;
        let Some(&last) = page.last() else {
            return Ok(ids);
        };
        let full = page.len() >= page_size.max(1);
        ids.extend(page);
        if !full {
            return Ok(ids);
        }
        after = last;
    }
}
