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
//!   to come: it goes on inside `T` by id, leaving out the ids of `T` the page already had.
//! - **inside a second** `T`: `T <= cursor < T+1s AND id > last_id AND id NOT IN (ids of T
//!   already read)`, ordered by `id`. Ids are unique, so this always progresses, whatever the
//!   number of records stamped alike, and no record is read twice in one run.
//!
//! A checkpoint is `(second, last_id)`: inside `second` after `last_id`, or the whole second
//! done when `last_id` is [`Checkpoint::SECOND_DONE`]. The ids left out are not part of it: a
//! run resumed after a crash reads that second from `last_id` again, so it repeats at most a
//! page; records of one second may be delivered twice, never skipped.
//!
//! # Backfill by id
//! A first run does not need the time order at all: it reads the model by id keyset
//! ([`id_page`]), which is exact and cheap, after taking the high-water mark
//! ([`backfill_bounds`]): the newest cursor second at that moment. Records written during the
//! backfill carry a cursor at or after that second, so a feed started there
//! ([`ChangeFeed::within_second`], leaving out the ids the backfill read in that second)
//! catches them. While it runs, the checkpoint is [`Checkpoint::backfill`]: the high-water
//! mark and the id up to which every record is stored.

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

    /// A backfill by id under way: every record with `id <= done_through` is stored, and the
    /// change feed continues from `high_water` once the backfill is done.
    ///
    /// Stored in the same two columns as a feed checkpoint, with `last_id` negative
    /// (`-1 - done_through`): Odoo ids are positive, so the two never mix up, and no schema
    /// change is needed.
    pub fn backfill(high_water: Timestamp, done_through: i64) -> Checkpoint {
        Checkpoint {
            second: truncate(high_water),
            last_id: -1 - done_through.max(0),
        }
    }

    /// For a [`Checkpoint::backfill`], the id up to which every record is stored.
    pub fn backfill_done_through(&self) -> Option<i64> {
        (self.last_id < 0).then(|| -1 - self.last_id)
    }

    /// The checkpoint a new run starts from: `overlap` earlier, re-reading that window whole,
    /// so rows committed late with an earlier `write_date` (a long transaction's start time)
    /// are not missed. A backfill keeps its id progress and moves its high-water mark back.
    pub fn rewound(self, overlap: SignedDuration) -> Checkpoint {
        if overlap.is_zero() {
            return self;
        }
        let second = truncate(self.second.checked_sub(overlap).unwrap_or(self.second));
        match self.backfill_done_through() {
            Some(done_through) => Checkpoint::backfill(second, done_through),
            None => Checkpoint { second, last_id: 0 },
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
    /// The fields every read asks for: the configured ones plus `id` and the cursor, or all
    /// of them when none is configured.
    fn read_fields(&self) -> Vec<String> {
        let mut fields = self.fields.clone();
        // An empty list asks Odoo for every field, the cursor and id included.
        if !fields.is_empty() {
            for required in ["id", self.cursor_field.as_str()] {
                if !fields.iter().any(|f| f == required) {
                    fields.push(required.to_owned());
                }
            }
        }
        fields
    }

    /// The records the feed follows: the user's domain, with a cursor value.
    fn followed(&self) -> Domain {
        self.domain.clone() & field(self.cursor_field.as_str()).is_set()
    }

    fn options(
        &self,
        domain: Domain,
        fields: &[String],
        order: &str,
        limit: usize,
    ) -> SearchReadOptions {
        SearchReadOptions::new(domain)
            .fields(fields.iter().map(String::as_str))
            .order(order)
            .limit(limit as u64)
            .context(self.context.clone())
    }

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

/// At most this many ids go into one `id not in (…)`: beyond them, a query inside a second
/// stops at the last id it leaves out, so that requests stay small whatever the number of
/// ids already read.
const EXCLUDED_PER_QUERY: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// From the beginning of time.
    Start,
    InSecond {
        second: Timestamp,
        after_id: i64,
        /// Ids of `second` above `after_id` already read in this run, ascending.
        read: Vec<i64>,
    },
    After {
        second: Timestamp,
    },
    /// Nothing more to read; every record up to the end of `second` (if any) was read.
    CaughtUp {
        second: Option<Timestamp>,
    },
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
    /// A feed starting after `from`, or from the beginning (a full backfill) when `None`. A
    /// [`Checkpoint::backfill`] is not a place in time: such a feed starts from the
    /// beginning, which reads everything the backfill would have.
    pub fn new(client: &'c OdooClient, spec: FeedSpec, from: Option<Checkpoint>) -> ChangeFeed<'c> {
        let phase = match from {
            None => Phase::Start,
            Some(checkpoint) if checkpoint.backfill_done_through().is_some() => Phase::Start,
            Some(checkpoint) if checkpoint.is_second_done() => Phase::After {
                second: checkpoint.second,
            },
            Some(checkpoint) => Phase::InSecond {
                second: checkpoint.second,
                after_id: checkpoint.last_id,
                read: Vec::new(),
            },
        };
        ChangeFeed {
            client,
            fields: spec.read_fields(),
            spec,
            phase,
        }
    }

    /// A feed starting inside `second` (seconds before it done), leaving out `already_read`:
    /// how changes are followed after a backfill by id whose high-water mark is `second`.
    pub fn within_second(
        client: &'c OdooClient,
        spec: FeedSpec,
        second: Timestamp,
        mut already_read: Vec<i64>,
    ) -> ChangeFeed<'c> {
        already_read.sort_unstable();
        already_read.dedup();
        ChangeFeed {
            client,
            fields: spec.read_fields(),
            spec,
            phase: Phase::InSecond {
                second: truncate(second),
                after_id: 0,
                read: already_read,
            },
        }
    }

    /// The next page, or `None` once the feed has caught up with Odoo.
    pub async fn next_page(&mut self) -> Result<Option<Page>, FeedError> {
        let cursor = self.spec.cursor_field.clone();
        let page_size = self.spec.page_size.max(1);
        loop {
            let done = Phase::CaughtUp { second: None };
            match std::mem::replace(&mut self.phase, done) {
                phase @ Phase::CaughtUp { .. } => {
                    self.phase = phase;
                    return Ok(None);
                }
                Phase::InSecond {
                    second,
                    after_id,
                    mut read,
                } => {
                    let excluded = read.len().min(EXCLUDED_PER_QUERY);
                    let bound = (read.len() > EXCLUDED_PER_QUERY).then(|| read[excluded - 1]);
                    let mut domain = self.spec.domain.clone()
                        & field(cursor.as_str()).gte(format_datetime(second))
                        & field(cursor.as_str()).lt(format_datetime(next_second(second)))
                        & field("id").gt(after_id);
                    if let Some(bound) = bound {
                        domain = domain & field("id").lte(bound);
                    }
                    if excluded > 0 {
                        domain = domain & field("id").not_in(read[..excluded].iter().copied());
                    }
                    let records = self.read(domain, "id asc", page_size).await?;
                    let last_id = if records.len() >= page_size {
                        let last = self.id_of(records.last())?;
                        read.retain(|id| *id > last);
                        self.phase = Phase::InSecond {
                            second,
                            after_id: last,
                            read,
                        };
                        last
                    } else if let Some(bound) = bound {
                        // Every id of the second up to `bound` is read now: the ones left out
                        // were on earlier pages.
                        read.drain(..excluded);
                        self.phase = Phase::InSecond {
                            second,
                            after_id: bound,
                            read,
                        };
                        bound
                    } else {
                        self.phase = Phase::After { second };
                        Checkpoint::SECOND_DONE
                    };
                    if records.is_empty() {
                        continue;
                    }
                    return Ok(Some(Page {
                        records,
                        checkpoint: Checkpoint { second, last_id },
                    }));
                }
                phase @ (Phase::Start | Phase::After { .. }) => {
                    let mut domain = self.spec.followed();
                    if let Phase::After { second } = phase {
                        domain = domain
                            & field(cursor.as_str()).gte(format_datetime(next_second(second)));
                    }
                    let order = format!("{cursor} asc, id asc");
                    let records = self.read(domain, &order, page_size).await?;
                    let Some(last) = records.last() else {
                        self.phase = Phase::CaughtUp {
                            second: match phase {
                                Phase::After { second } => Some(second),
                                _ => None,
                            },
                        };
                        return Ok(None);
                    };
                    let last_second = self.second_of(last)?;
                    let checkpoint = if records.len() < page_size {
                        self.phase = Phase::CaughtUp {
                            second: Some(last_second),
                        };
                        Checkpoint {
                            second: last_second,
                            last_id: Checkpoint::SECOND_DONE,
                        }
                    } else {
                        // The page may end inside `last_second`: go on inside it by id,
                        // without the ids of it this page already has (its last records).
                        let mut read = Vec::new();
                        for record in records.iter().rev() {
                            if self.second_of(record)? != last_second {
                                break;
                            }
                            read.push(self.id_of(Some(record))?);
                        }
                        read.sort_unstable();
                        self.phase = Phase::InSecond {
                            second: last_second,
                            after_id: 0,
                            read,
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

    /// Where the feed stands now: the checkpoint of everything it has read. Once it has
    /// caught up this can be ahead of the last page's checkpoint (queries that found nothing
    /// more still moved it), and worth saving so that the next run does not ask again.
    pub fn position(&self) -> Option<Checkpoint> {
        match &self.phase {
            Phase::Start | Phase::CaughtUp { second: None } => None,
            Phase::InSecond {
                second, after_id, ..
            } => Some(Checkpoint {
                second: *second,
                last_id: *after_id,
            }),
            Phase::After { second }
            | Phase::CaughtUp {
                second: Some(second),
            } => Some(Checkpoint {
                second: *second,
                last_id: Checkpoint::SECOND_DONE,
            }),
        }
    }

    async fn read(
        &self,
        domain: Domain,
        order: &str,
        limit: usize,
    ) -> Result<Vec<Record>, FeedError> {
        let options = self.spec.options(domain, &self.fields, order, limit);
        Ok(self.client.search_read(&self.spec.model, &options).await?)
    }

    fn id_of(&self, record: Option<&Record>) -> Result<i64, FeedError> {
        record
            .ok_or_else(|| self.bad_cursor(0, "no record".into()))?
            .id()
            .map_err(|e| self.bad_cursor(0, e.to_string()))
    }

    fn second_of(&self, record: &Record) -> Result<Timestamp, FeedError> {
        second_of(&self.spec, record)
    }

    fn bad_cursor(&self, id: i64, detail: String) -> FeedError {
        bad_cursor(&self.spec, id, detail)
    }
}

fn second_of(spec: &FeedSpec, record: &Record) -> Result<Timestamp, FeedError> {
    let id = record.id().unwrap_or_default();
    match record.datetime(&spec.cursor_field) {
        Ok(Some(timestamp)) => Ok(truncate(timestamp)),
        Ok(None) => Err(bad_cursor(spec, id, "empty".into())),
        Err(error) => Err(bad_cursor(spec, id, error.to_string())),
    }
}

fn bad_cursor(spec: &FeedSpec, id: i64, detail: String) -> FeedError {
    FeedError::BadCursor {
        model: spec.model.clone(),
        id,
        field: spec.cursor_field.clone(),
        detail,
    }
}

/// Where a backfill by id stands before it reads anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillBounds {
    /// The newest cursor second among the followed records: the change feed continues from
    /// it once the backfill is done. `None` when there is no record to backfill.
    pub high_water: Option<Timestamp>,
    /// The largest id among them: records created later come through the change feed.
    pub last_id: Option<i64>,
}

/// The high-water mark and the last id of the records `spec` follows, asked concurrently.
/// Taken before the backfill reads anything, so that what changes meanwhile is caught after.
pub async fn backfill_bounds(
    client: &OdooClient,
    spec: &FeedSpec,
) -> Result<BackfillBounds, FeedError> {
    let cursor = spec.cursor_field.as_str();
    let newest = spec.options(
        spec.followed(),
        &[cursor.to_owned()],
        &format!("{cursor} desc, id desc"),
        1,
    );
    let last = SearchReadOptions::new(spec.followed())
        .order("id desc")
        .limit(1)
        .context(spec.context.clone());
    let (newest, last) = tokio::join!(
        client.search_read(&spec.model, &newest),
        client.search(&spec.model, &last)
    );
    let high_water = match newest?.first() {
        Some(record) => Some(second_of(spec, record)?),
        None => None,
    };
    Ok(BackfillBounds {
        high_water,
        last_id: last?.first().copied(),
    })
}

/// One page of a backfill by id: the followed records with `after < id <= through`, by id,
/// at most `spec.page_size` of them.
pub async fn id_page(
    client: &OdooClient,
    spec: &FeedSpec,
    after: i64,
    through: i64,
) -> Result<Vec<Record>, FeedError> {
    let domain = spec.followed() & field("id").gt(after) & field("id").lte(through);
    let options = spec.options(domain, &spec.read_fields(), "id asc", spec.page_size.max(1));
    Ok(client.search_read(&spec.model, &options).await?)
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
