defmodule ScopeAppWeb.Router do
  use ScopeAppWeb, :router

  pipeline :browser do
    plug(:accepts, ["html"])
    plug(:fetch_session)
    plug(:fetch_live_flash)
    plug(:put_root_layout, html: {ScopeAppWeb.Layouts, :root})
    plug(:protect_from_forgery)
  end

  pipeline :api do
    plug(:accepts, ["json"])
  end

  # ElixirScope's web UI behind the application's own authentication.
  pipeline :scope_admin do
    plug(:admin_only)
  end

  scope "/" do
    pipe_through(:scope_admin)
    forward("/scope", ElixirScope.UI.Plug)
  end

  scope "/", ScopeAppWeb do
    pipe_through(:browser)
    get("/login", SessionController, :new)
    post("/login", SessionController, :create)
    live("/counter", CounterLive)
  end

  scope "/", ScopeAppWeb do
    pipe_through(:api)
    get("/cart", CartController, :show)
    post("/cart/items", CartController, :add)
    get("/boom", CartController, :boom)
  end

  defp admin_only(conn, _opts),
    do: Plug.BasicAuth.basic_auth(conn, username: "admin", password: "scope-admin-password")
end
