import Config

config :phoenix, :json_library, Jason
# The secrets a team already keeps out of its logs; ElixirScope's redaction reads them too.
config :phoenix, :filter_parameters, ["password", "card_number"]

config :scope_app, ScopeAppWeb.Endpoint,
  adapter: Bandit.PhoenixAdapter,
  http: [ip: {127, 0, 0, 1}, port: 0],
  server: true,
  secret_key_base: String.duplicate("scope-app-test-secret-", 4),
  live_view: [signing_salt: "scope-app-lv-salt"],
  pubsub_server: ScopeApp.PubSub,
  render_errors: [
    formats: [json: ScopeAppWeb.ErrorJSON, html: ScopeAppWeb.ErrorHTML],
    layout: false
  ],
  check_origin: false
