defmodule ScopeAppWeb do
  @moduledoc false
  # The `use ScopeAppWeb, :controller` / `:live_view` / ... entry points, as a generated
  # Phoenix 1.7 application has them (trimmed to what this app uses).

  def router do
    quote do
      use Phoenix.Router, helpers: false
      import Plug.Conn
      import Phoenix.Controller
      import Phoenix.LiveView.Router
    end
  end

  def channel do
    quote do
      use Phoenix.Channel
    end
  end

  def controller do
    quote do
      use Phoenix.Controller, formats: [:html, :json], layouts: [html: ScopeAppWeb.Layouts]
      import Plug.Conn
    end
  end

  def live_view do
    quote do
      use Phoenix.LiveView, layout: {ScopeAppWeb.Layouts, :app}
    end
  end

  def html do
    quote do
      use Phoenix.Component
      import Phoenix.HTML
    end
  end

  defmacro __using__(which) when is_atom(which), do: apply(__MODULE__, which, [])
end
