defmodule ScopeAppWeb.Endpoint do
  use Phoenix.Endpoint, otp_app: :scope_app

  @session_options [
    store: :cookie,
    key: "_scope_app_key",
    signing_salt: "scope-app-session",
    same_site: "Lax"
  ]

  socket("/live", Phoenix.LiveView.Socket, websocket: [connect_info: [session: @session_options]])
  socket("/socket", ScopeAppWeb.UserSocket, websocket: true, longpoll: false)

  # The JavaScript clients ship prebuilt with Phoenix and LiveView.
  plug(Plug.Static, at: "/assets/phoenix", from: {:phoenix, "priv/static"}, gzip: false)
  plug(Plug.Static, at: "/assets/lv", from: {:phoenix_live_view, "priv/static"}, gzip: false)
  plug(Plug.Static, at: "/", from: :scope_app, gzip: false, only: ~w(assets favicon.ico))

  plug(Plug.RequestId)
  plug(Plug.Telemetry, event_prefix: [:phoenix, :endpoint])

  plug(Plug.Parsers,
    parsers: [:urlencoded, :multipart, :json],
    pass: ["*/*"],
    json_decoder: Phoenix.json_library()
  )

  plug(Plug.MethodOverride)
  plug(Plug.Head)
  plug(Plug.Session, @session_options)
  plug(ScopeAppWeb.Router)
end
