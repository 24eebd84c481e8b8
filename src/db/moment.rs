//! The SQL type of the schema's times: UTC without a zone, microseconds.
//! SQLite and PostgreSQL store and bind it as diesel's `Timestamp`. MySQL
//! stores it as `DATETIME(6)`, and binds it as such: diesel's own
//! `Timestamp` would bind a MySQL `TIMESTAMP`, whose range ends in
//! January 2038, and MariaDB stores a later value as NULL without a word
//! (a key that expires in 2099 would never expire).

use super::MultiBackend;
use chrono::NaiveDateTime;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{HasSqlType, Timestamp};
use diesel::sqlite::Sqlite;

#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(sqlite_type(name = "Text"))]
#[diesel(postgres_type(oid = 1114, array_oid = 1115))]
#[diesel(mysql_type(name = "DateTime"))]
pub struct Moment;

/// What a backend's `Timestamp` already does: `Moment` is the same there.
macro_rules! like_timestamp {
    ($backend:ty) => {
        impl ToSql<Moment, $backend> for NaiveDateTime {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, $backend>) -> serialize::Result {
                <NaiveDateTime as ToSql<Timestamp, $backend>>::to_sql(self, out)
            }
        }

        impl FromSql<Moment, $backend> for NaiveDateTime {
            fn from_sql(
                bytes: <$backend as diesel::backend::Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                <NaiveDateTime as FromSql<Timestamp, $backend>>::from_sql(bytes)
            }
        }
    };
}

like_timestamp!(Sqlite);
like_timestamp!(Pg);

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use diesel::mysql::Mysql;
    use diesel::sql_types::Datetime;

    impl ToSql<Moment, Mysql> for NaiveDateTime {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Mysql>) -> serialize::Result {
            <NaiveDateTime as ToSql<Datetime, Mysql>>::to_sql(self, out)
        }
    }

    impl FromSql<Moment, Mysql> for NaiveDateTime {
        fn from_sql(bytes: diesel::mysql::MysqlValue<'_>) -> deserialize::Result<Self> {
            <NaiveDateTime as FromSql<Datetime, Mysql>>::from_sql(bytes)
        }
    }
}

// The connection over every backend hands a bound time to the backend in
// use, as its derive does for diesel's own types.
impl HasSqlType<Moment> for MultiBackend {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        MultiBackend::lookup_sql_type::<Moment>(lookup)
    }
}

impl ToSql<Moment, MultiBackend> for NaiveDateTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Moment, self));
        Ok(IsNull::No)
    }
}

impl FromSql<Moment, MultiBackend> for NaiveDateTime {
    fn from_sql(
        bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        bytes.from_sql::<Self, Moment>()
    }
}

/// A time as a query writes it: a `Moment` (`NaiveDateTime` itself cannot
/// be one: diesel's rules give it `Timestamp` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, diesel::expression::AsExpression)]
#[diesel(sql_type = Moment)]
pub struct At(pub NaiveDateTime);

impl<DB> ToSql<Moment, DB> for At
where
    DB: diesel::backend::Backend,
    NaiveDateTime: ToSql<Moment, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}
