# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_chatgate_global_optspecs
    string join \n c/config= database= v/verbose q/quiet h/help V/version
end

function __fish_chatgate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_chatgate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_chatgate_using_subcommand
    set -l cmd (__fish_chatgate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c chatgate -n "__fish_chatgate_needs_command" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_needs_command" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_needs_command" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_needs_command" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_needs_command" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_needs_command" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "serve" -d 'Run the gateway'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "user" -d 'Manage users and their keys'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "token" -d 'Rotate a user\'s key'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "team" -d 'Manage teams: limits and budgets their members share'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "key" -d 'Manage a user\'s keys: one per laptop, CI job or agent'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "config" -d 'Inspect the configuration'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "usage" -d 'Usage reports'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "audit" -d 'The audit trail: every change to users, teams and keys'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "cluster" -d 'The instances sharing this database'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "db" -d 'Database maintenance'
complete -c chatgate -n "__fish_chatgate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -l listen -d 'Address to listen on (overrides `listen`)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -l demo -d 'Use the built-in echo upstream (no upstream key needed) and print a demo key'
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand serve" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "add" -d 'Create a user and print their key (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "list" -d 'List users (active ones unless --all)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "show" -d 'Show one user in detail'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "edit" -d 'Change a user\'s limits, expiry, models, rpm or note'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "recharge" -d 'Raise a user\'s limits by N (a top-up)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "import" -d 'Import users and their keys from an older gateway (SQLite `users` table or CSV `name,token`)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "disable" -d 'Block a user\'s key at once'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "enable" -d 'Unblock a user\'s key'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "remove" -d 'Delete a user (their usage history stays for reports)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and not __fish_seen_subcommand_from add list show edit recharge import disable enable remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l token -d 'Use this key instead of generating one' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l token-limit -d 'Token limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l request-limit -d 'Request limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l budget-usd -d 'USD the user may spend per period, at the configured prices (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l limit-period -d 'The period limits apply to' -r -f -a "total\t''
day\t''
month\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l models -d 'Allowed models: comma-separated glob patterns (none = all)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l rpm -d 'Requests per minute (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l max-parallel -d 'Requests running at once (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l note -d 'A free-text note ("" clears it)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l expires -d 'Expiry: YYYY-MM-DD (end of day, UTC), RFC 3339, a duration (30d, 12h, 90m) or never' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l team -d 'The user\'s team (none = no team)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l format -d '`json` prints {"name", "key"}' -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -l all -d 'Include disabled and expired users'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l token-limit -d 'Token limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l request-limit -d 'Request limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l budget-usd -d 'USD the user may spend per period, at the configured prices (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l limit-period -d 'The period limits apply to' -r -f -a "total\t''
day\t''
month\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l models -d 'Allowed models: comma-separated glob patterns (none = all)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l rpm -d 'Requests per minute (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l max-parallel -d 'Requests running at once (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l note -d 'A free-text note ("" clears it)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l expires -d 'Expiry: YYYY-MM-DD (end of day, UTC), RFC 3339, a duration (30d, 12h, 90m) or never' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l team -d 'The user\'s team (none = no team)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from edit" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -l tokens -d 'Tokens to add to the token limit' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -l requests -d 'Requests to add to the request limit' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -l usd -d 'USD to add to the budget' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from recharge" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -l format -d 'The file\'s kind; by default guessed from its first bytes' -r -f -a "sqlite\t'An SQLite database with a `users` table: `username` and `token` (or `password`)'
csv\t'`name,token` lines, with or without that header'"
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from disable" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from disable" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from disable" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from disable" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from enable" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from enable" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from enable" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from enable" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -l yes -d 'Do not ask for confirmation'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a user and print their key (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users (active ones unless --all)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one user in detail'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "edit" -d 'Change a user\'s limits, expiry, models, rpm or note'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "recharge" -d 'Raise a user\'s limits by N (a top-up)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import users and their keys from an older gateway (SQLite `users` table or CSV `name,token`)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Block a user\'s key at once'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Unblock a user\'s key'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete a user (their usage history stays for reports)'
complete -c chatgate -n "__fish_chatgate_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -f -a "rotate" -d 'Issue a new key for a user and print it (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and not __fish_seen_subcommand_from rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -l label -d 'Which of the user\'s keys (default: `default`, or their only key)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -l token -d 'Use this key instead of generating one' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -l format -d '`json` prints {"name", "key"}' -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from rotate" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Issue a new key for a user and print it (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "add" -d 'Create a team with its own limits, which its members share'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "list" -d 'List teams'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "show" -d 'Show one team in detail'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "edit" -d 'Change a team\'s limits, models, rpm or note'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "recharge" -d 'Raise a team\'s limits by N (a top-up)'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "remove" -d 'Delete a team without members (its usage stays in reports)'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and not __fish_seen_subcommand_from add list show edit recharge remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l token-limit -d 'Token limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l request-limit -d 'Request limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l budget-usd -d 'USD the user may spend per period, at the configured prices (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l limit-period -d 'The period limits apply to' -r -f -a "total\t''
day\t''
month\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l models -d 'Allowed models: comma-separated glob patterns (none = all)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l rpm -d 'Requests per minute (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l max-parallel -d 'Requests running at once (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l note -d 'A free-text note ("" clears it)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l token-limit -d 'Token limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l request-limit -d 'Request limit per period (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l budget-usd -d 'USD the user may spend per period, at the configured prices (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l limit-period -d 'The period limits apply to' -r -f -a "total\t''
day\t''
month\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l models -d 'Allowed models: comma-separated glob patterns (none = all)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l rpm -d 'Requests per minute (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l max-parallel -d 'Requests running at once (none = unlimited)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l note -d 'A free-text note ("" clears it)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from edit" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -l tokens -d 'Tokens to add to the token limit' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -l requests -d 'Requests to add to the request limit' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -l usd -d 'USD to add to the budget' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from recharge" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -l yes -d 'Do not ask for confirmation'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a team with its own limits, which its members share'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "list" -d 'List teams'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one team in detail'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "edit" -d 'Change a team\'s limits, models, rpm or note'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "recharge" -d 'Raise a team\'s limits by N (a top-up)'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete a team without members (its usage stays in reports)'
complete -c chatgate -n "__fish_chatgate_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -f -a "add" -d 'Give a user one more key (one per laptop, CI job or agent) and print it (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -f -a "list" -d 'List keys (of one user, or everyone\'s); never the keys themselves'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -f -a "revoke" -d 'End one key of a user at once (by label or hint); their other keys keep working'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and not __fish_seen_subcommand_from add list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -l label -d 'A label unique for the user (default: key-N, the smallest free N)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -l expires -d 'Expiry: YYYY-MM-DD (end of day, UTC), RFC 3339, a duration (30d, 12h, 90m) or never' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -l models -d 'Models this key may use, narrowing the user\'s own (comma-separated globs)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -l token -d 'Use this key instead of generating one' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -l format -d '`json` prints {"user", "label", "key"}' -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -l yes -d 'Do not ask for confirmation'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "add" -d 'Give a user one more key (one per laptop, CI job or agent) and print it (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "list" -d 'List keys (of one user, or everyone\'s); never the keys themselves'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'End one key of a user at once (by label or hint); their other keys keep working'
complete -c chatgate -n "__fish_chatgate_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate the config and print the effective settings (secrets redacted)'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from check" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from check" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate the config and print the effective settings (secrets redacted)'
complete -c chatgate -n "__fish_chatgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -f -a "report" -d 'Usage grouped by user, team, key, model, day, month, upstream, endpoint or client (default: this month by user)'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -f -a "prune" -d 'Delete per-request records older than DATE; daily totals stay for reports'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and not __fish_seen_subcommand_from report prune help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l since -d 'Start, inclusive: YYYY-MM-DD or RFC 3339' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l until -d 'End: a date includes that whole day; an RFC 3339 time is exclusive' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l period -d 'today, yesterday, this-month, last-month or Nd (the last N days)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l user -d 'Only these users (repeatable)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l team -d 'Only these teams\' usage, made while the users were in them (repeatable)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l by -d 'Grouping keys, comma-separated' -r -f -a "user\t''
team\t''
key\t''
model\t''
day\t''
month\t''
upstream\t''
endpoint\t''
client\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l output -d 'Write to this file instead of stdout' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from report" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -l before -d 'YYYY-MM-DD (records before that day) or RFC 3339' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -l yes -d 'Do not ask for confirmation'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from prune" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from help" -f -a "report" -d 'Usage grouped by user, team, key, model, day, month, upstream, endpoint or client (default: this month by user)'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Delete per-request records older than DATE; daily totals stay for reports'
complete -c chatgate -n "__fish_chatgate_using_subcommand usage; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'Who changed which user, team or key, when, and what changed'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l since -d 'From, inclusive: YYYY-MM-DD or RFC 3339' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l until -d 'To: a date includes that whole day; an RFC 3339 time is exclusive' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l actor -d 'Only changes by this actor (cli:alice, admin-token, oidc:…, user:…)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l target -d 'Only changes to this user (and their keys) or team' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "list" -d 'Who changed which user, team or key, when, and what changed'
complete -c chatgate -n "__fish_chatgate_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'The `serve` instances sharing this database, from the rows each refreshes every second'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from help" -f -a "status" -d 'The `serve` instances sharing this database, from the rows each refreshes every second'
complete -c chatgate -n "__fish_chatgate_using_subcommand cluster; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -f -a "migrate" -d 'Apply pending database migrations'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and not __fish_seen_subcommand_from migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s c -l config -d 'Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)' -r -F
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l database -d 'Database URL; overrides database.url (sqlite://PATH)' -r
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s v -l verbose -d 'More log output (-v debug, -vv trace); errors show their causes'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s q -l quiet -d 'Only errors and what was asked for'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Apply pending database migrations'
complete -c chatgate -n "__fish_chatgate_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "serve" -d 'Run the gateway'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "user" -d 'Manage users and their keys'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "token" -d 'Rotate a user\'s key'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "team" -d 'Manage teams: limits and budgets their members share'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "key" -d 'Manage a user\'s keys: one per laptop, CI job or agent'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "config" -d 'Inspect the configuration'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "usage" -d 'Usage reports'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "audit" -d 'The audit trail: every change to users, teams and keys'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "cluster" -d 'The instances sharing this database'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "db" -d 'Database maintenance'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and not __fish_seen_subcommand_from serve user token team key config usage audit cluster db help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Create a user and print their key (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users (active ones unless --all)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "show" -d 'Show one user in detail'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "edit" -d 'Change a user\'s limits, expiry, models, rpm or note'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "recharge" -d 'Raise a user\'s limits by N (a top-up)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "import" -d 'Import users and their keys from an older gateway (SQLite `users` table or CSV `name,token`)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "disable" -d 'Block a user\'s key at once'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "enable" -d 'Unblock a user\'s key'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "remove" -d 'Delete a user (their usage history stays for reports)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "rotate" -d 'Issue a new key for a user and print it (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "add" -d 'Create a team with its own limits, which its members share'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "list" -d 'List teams'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "show" -d 'Show one team in detail'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "edit" -d 'Change a team\'s limits, models, rpm or note'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "recharge" -d 'Raise a team\'s limits by N (a top-up)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "remove" -d 'Delete a team without members (its usage stays in reports)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "add" -d 'Give a user one more key (one per laptop, CI job or agent) and print it (shown once)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "list" -d 'List keys (of one user, or everyone\'s); never the keys themselves'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "revoke" -d 'End one key of a user at once (by label or hint); their other keys keep working'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate the config and print the effective settings (secrets redacted)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from usage" -f -a "report" -d 'Usage grouped by user, team, key, model, day, month, upstream, endpoint or client (default: this month by user)'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from usage" -f -a "prune" -d 'Delete per-request records older than DATE; daily totals stay for reports'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "list" -d 'Who changed which user, team or key, when, and what changed'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from cluster" -f -a "status" -d 'The `serve` instances sharing this database, from the rows each refreshes every second'
complete -c chatgate -n "__fish_chatgate_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "migrate" -d 'Apply pending database migrations'
